#!/usr/bin/env python
"""First library scan vs ``sha256sum`` over the same files, and a rescan of unchanged files.

    .venv/bin/python bench/scan.py [--files 200] [--mb 8] [--small 10000] [--repeat 3]
                                   [--dir /path/on/the/disk/to/test] [--chunk-kb 1024]

1. Writes ``--files`` LoRA-shaped .safetensors files of ``--mb`` MB of random tensor data each
   (valid header) in a temporary folder, and syncs them to disk.
2. Before every measurement the files leave the page cache: ``echo 1 > drop_caches`` when
   permitted (root outside a container), else ``posix_fadvise(DONTNEED)`` on each file (the
   pages are clean after the sync, so the kernel drops them). The cached share is checked
   with ``mincore`` through ``fincore`` when it is installed.
3. Times ``cat`` (reading only: the disk's ceiling) and ``sha256sum`` over the files, then
   our first scan (``library_scan`` with a fresh
   library: every LoRA row and root deleted) with 1 worker and with 2 workers; ``--repeat``
   rounds alternate the three and the median of each is kept. Prints MB/s and the ratios.
4. Writes ``--small`` tiny valid LoRA files, scans them once, then times the rescan (all
   unchanged).

Targets (issue #3): first scan >= 0.9x sha256sum throughput with one worker, >= 1.7x with two;
rescan of 10,000 unchanged files <= 2 s. Runs on a temporary SQLite database
(``ATELIER_VAR_DIR`` = a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def drop_cache(paths: list[Path]) -> str:
    """Evict ``paths`` from the page cache; returns the method used."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("1\n")
        return "drop_caches"
    except OSError:
        pass
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "fadvise"


def cached_fraction(paths: list[Path]) -> float | None:
    """Share of the files' pages in the page cache (``fincore``), or None without it."""
    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE",
                          *map(str, paths[:50])], capture_output=True, text=True)
    res = size = 0
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            res, size = res + int(parts[0]), size + int(parts[1])
    return res / size if size else None


def time_sha256sum(paths: list[Path]) -> float:
    started = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_read(paths: list[Path]) -> float:
    """Seconds to only read the files (``cat > /dev/null``): the disk's ceiling."""
    started = time.perf_counter()
    subprocess.run(["cat", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_first_scan(root_path: Path, workers: int) -> tuple[float, dict]:
    from loras.models import LibraryRoot, LoraModel
    from loras.services.scan import library_scan

    LoraModel.objects.all().delete()
    LibraryRoot.objects.all().delete()
    root = LibraryRoot.objects.create(path=str(root_path), name=root_path.name)
    started = time.perf_counter()
    report = library_scan(roots=[root], workers=workers)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--mb", type=float, default=8.0, help="MB (10^6 bytes) per file")
    parser.add_argument("--small", type=int, default=10_000, help="files for the rescan test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the files (default: TMPDIR)")
    parser.add_argument("--chunk-kb", type=int, default=None,
                        help="LORA_HASH_CHUNK_BYTES in KiB (default: the setting)")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="atelier-bench-scan-"))
    data_dir = Path(tempfile.mkdtemp(prefix="atelier-bench-files-", dir=args.dir))
    os.environ.update(ATELIER_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="config.settings.local",
                      LORA_ROOTS=str(data_dir / "unused"))
    if args.chunk_kb:
        os.environ["LORA_HASH_CHUNK_BYTES"] = str(args.chunk_kb * 1024)
    import django

    django.setup()
    from django.core.management import call_command

    from tests.support.lora_files import write_raw_safetensors, write_sized_lora

    call_command("migrate", verbosity=0)
    try:
        big = data_dir / "big"
        size = int(args.mb * 1_000_000)
        print(f"writing {args.files} files x {args.mb} MB in {big} ...", flush=True)
        paths = [write_sized_lora(big / f"lora_{i:05d}.safetensors", data_bytes=size, seed=i)
                 for i in range(args.files)]
        total_mb = sum(p.stat().st_size for p in paths) / 1e6
        results: dict[str, list[float]] = {"read": [], "sha256sum": [], "scan_1": [],
                                           "scan_2": []}
        method = ""
        for round_no in range(args.repeat):
            for name in results:
                method = drop_cache(paths)
                cached = cached_fraction(paths)
                if name == "read":
                    seconds = time_read(paths)
                elif name == "sha256sum":
                    seconds = time_sha256sum(paths)
                else:
                    seconds, report = time_first_scan(big, int(name[-1]))
                    assert report["new"] == args.files and not report["errors"], report
                results[name].append(seconds)
                note = "" if cached is None else f" (cached before: {cached:.0%})"
                print(f"  round {round_no + 1} {name:9s} {seconds:7.2f} s  "
                      f"{total_mb / seconds:8.1f} MB/s{note}", flush=True)
        med = {name: statistics.median(values) for name, values in results.items()}
        mbps = {name: total_mb / s for name, s in med.items()}
        from django.conf import settings

        print(f"\nfirst scan of {args.files} files, {total_mb:.0f} MB, cache eviction: {method}; "
              f"median of {args.repeat}; chunks of {settings.LORA_HASH_CHUNK_BYTES // 1024} KiB; "
              f"{os.cpu_count()} CPUs")
        for name in results:
            print(f"  {name:9s} {med[name]:7.2f} s  {mbps[name]:8.1f} MB/s  "
                  f"{mbps[name] / mbps['sha256sum']:.2f}x sha256sum  "
                  f"{mbps[name] / mbps['read']:.2f}x the disk (cat)")
        ok1 = "OK" if mbps["scan_1"] >= 0.9 * mbps["sha256sum"] else "MISSED"
        ok2 = "OK" if mbps["scan_2"] >= 1.7 * mbps["sha256sum"] else "MISSED"
        print(f"  targets: scan_1 >= 0.90x -> {ok1}; scan_2 >= 1.70x -> {ok2}")
        shutil.rmtree(big)

        if args.small:
            from loras.models import LibraryRoot, LoraModel
            from loras.services.scan import library_scan

            small = data_dir / "small"
            print(f"\nwriting {args.small} tiny LoRA files ...", flush=True)
            header = (b'{"__metadata__":{"ss_base_model_version":"sd_v1"},"lora_unet_x.lora_down'
                      b'.weight":{"dtype":"F16","shape":[4,8],"data_offsets":[0,64]}}')
            for i in range(args.small):
                write_raw_safetensors(small / f"f{i // 500:03d}" / f"tiny_{i:06d}.safetensors",
                                      header, os.urandom(64))
            LoraModel.objects.all().delete()
            LibraryRoot.objects.all().delete()
            root = LibraryRoot.objects.create(path=str(small), name="small")
            started = time.perf_counter()
            first = library_scan(roots=[root])
            first_s = time.perf_counter() - started
            rescans = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                report = library_scan(roots=[root])
                rescans.append(time.perf_counter() - started)
                assert report["unchanged"] == args.small, report
            print(f"  first scan of {first['new']} tiny files: {first_s:.2f} s")
            median = statistics.median(rescans)
            print(f"  rescan of {args.small} unchanged files: median {median:.3f} s "
                  f"(runs: {', '.join(f'{s:.3f}' for s in rescans)}); target <= 2 s -> "
                  f"{'OK' if median <= 2 else 'MISSED'}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
