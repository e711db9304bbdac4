import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_warm_up_imports_diffusers_only_for_workers_of_its_queue():
    code = (
        "import django, sys; django.setup()\n"
        "from providers.warmup import warm_up_providers\n"
        "warm_up_providers(queues=['default'])\n"
        "print('torch' in sys.modules)\n"
        "warm_up_providers(queues=['gpu'])\n"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"DJANGO_SETTINGS_MODULE": "config.settings.test",
                              "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]
