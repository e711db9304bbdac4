import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from images.models import Image

pytestmark = pytest.mark.django_db


def test_generate_command_writes_pngs_and_prints_their_paths(fake_profile, user, settings):
    user.is_superuser = True
    user.save()
    out, err = io.StringIO(), io.StringIO()
    call_command("generate", "a paper boat", "--steps", "3", "--seed", "11", "-n", "2",
                 stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 2
    paths = [Path(line.split("  ")[0]) for line in lines]
    assert all(p.is_file() and str(p).startswith(settings.MEDIA_ROOT) for p in paths)
    assert sorted(PILImage.open(p).text["parameters"].split("Seed: ")[1][:2] for p in paths) \
        == ["11", "12"]
    assert Image.objects.filter(user=user).count() == 2
    assert "3/3" in err.getvalue()  # the tqdm progress bar reached the last step


def test_generate_command_reports_bad_input(fake_profile, user):
    user.is_superuser = True
    user.save()
    with pytest.raises(CommandError, match="multiple of 8"):
        call_command("generate", "x", "--width", "65")
    with pytest.raises(CommandError, match="No LoRA 'nope'"):
        call_command("generate", "x", "--lora", "nope:0.5")
