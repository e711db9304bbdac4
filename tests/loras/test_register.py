"""A file added outside a scan (register command, downloads) is read as a scan reads it."""

import io

import pytest
from django.core.management import call_command

from loras.models import LoraModel
from loras.services import lora_register
from tests.support import lora_files

pytestmark = pytest.mark.django_db


def test_register_reads_header_metadata_and_a_rescan_leaves_it_alone(tmp_path, settings):
    settings.LORA_ROOTS = [str(tmp_path)]
    path = tmp_path / "ink.safetensors"
    lora_files.write_lora(path, arch="sdxl", layout="kohya",
                          metadata=lora_files.kohya_metadata("sdxl"))
    lora = lora_register(path=str(path))
    assert lora.base_model == "SDXL 1.0"
    assert lora.network_module == "networks.lora" and lora.network_rank
    assert lora.header_metadata["ss_base_model_version"].startswith("sdxl")
    out = io.StringIO()
    call_command("scan_loras", "--no-progress", stdout=out)
    assert "unchanged: 1" in out.getvalue()
    assert LoraModel.objects.get().pk == lora.pk
