"""loras.hashing: SHA-256 and AutoV3 in one pass, chunked, equal to hashlib over the bytes."""

import hashlib
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest

from loras.hashing import MIN_CHUNK, file_hashes
from tests.support.lora_files import kohya_metadata, write_lora, write_raw_safetensors


def expected(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return hashlib.sha256(raw).hexdigest(), hashlib.sha256(raw[8 + n:]).hexdigest(), n


@pytest.mark.parametrize("arch", ["sd1", "sdxl", "flux"])
def test_hashes_equal_hashlib_over_file_and_tensor_bytes(tmp_path, arch):
    path = write_lora(tmp_path / "a.safetensors", arch=arch, metadata=kohya_metadata(arch))
    sha, autov3, _ = expected(path)
    got = file_hashes(str(path), chunk_bytes=MIN_CHUNK)
    assert (got.sha256, got.autov3, got.size) == (sha, autov3, path.stat().st_size)
    assert got.autov2 == sha[:10]


@pytest.mark.parametrize("chunk", [MIN_CHUNK, 3 * MIN_CHUNK + 7, 8 * 1024 * 1024])
def test_header_larger_than_a_chunk_and_chunk_boundaries(tmp_path, chunk):
    # A header of ~200 KB (a big ss_tag_frequency) spans several 64 KiB chunks.
    meta = kohya_metadata("sd1", tags={f"tag{i}": i for i in range(12000)})
    path = write_lora(tmp_path / "big.safetensors", arch="flux", metadata=meta)
    sha, autov3, n = expected(path)
    assert n > 2 * MIN_CHUNK
    got = file_hashes(str(path), chunk_bytes=chunk, keep_head=100)
    assert (got.sha256, got.autov3) == (sha, autov3)
    assert got.head == path.read_bytes()[:100]


def test_autov3_empty_for_files_that_are_not_safetensors(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    lying = write_raw_safetensors(tmp_path / "lying.safetensors", b"{}", length=10_000)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for path in (short, lying, empty):
        got = file_hashes(str(path))
        assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert got.autov3 == ""
    # A header-only file: AutoV3 is the digest of no bytes.
    header_only = write_raw_safetensors(tmp_path / "h.safetensors", b"{}")
    assert file_hashes(str(header_only)).autov3 == hashlib.sha256(b"").hexdigest()


def test_threads_hash_files_independently(tmp_path):
    paths = [write_lora(tmp_path / f"{i}.safetensors", arch="flux", seed=i) for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda p: file_hashes(str(p), chunk_bytes=MIN_CHUNK), paths))
    assert [r.sha256 for r in results] == [expected(p)[0] for p in paths]
    assert len({r.sha256 for r in results}) == 6


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        file_hashes(str(tmp_path / "nope.safetensors"))


def resident_fraction(path) -> float:
    """Share of ``path``'s pages in the page cache (mincore(2) on a private mapping)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    page = mmap.PAGESIZE
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY)
        try:
            anchor = ctypes.c_char.from_buffer(mm)
            pages = (size + page - 1) // page
            vec = (ctypes.c_ubyte * pages)()
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size),
                              vec)
            assert rc == 0, ctypes.get_errno()
            del anchor
        finally:
            mm.close()
    return sum(v & 1 for v in vec) / pages


def test_hashing_does_not_fill_the_page_cache(tmp_path):
    from tests.support.lora_files import write_sized_lora

    path = write_sized_lora(tmp_path / "big.safetensors", data_bytes=8 * 1024 * 1024)
    with open(path, "rb") as fh:  # clean pages can be dropped
        import os

        os.fsync(fh.fileno())
    file_hashes(str(path), chunk_bytes=MIN_CHUNK, drop_cache=False)
    assert resident_fraction(path) > 0.9  # a plain read leaves the file cached
    file_hashes(str(path), chunk_bytes=MIN_CHUNK)
    assert resident_fraction(path) < 0.1
