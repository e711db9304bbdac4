import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh_python(code: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter with the test settings (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout,
                          env={"DJANGO_SETTINGS_MODULE": "config.settings.test",
                               "PATH": "/usr/bin:/bin"})


def test_warm_up_imports_diffusers_only_for_workers_of_its_queue():
    code = (
        "import django, sys; django.setup()\n"
        "from providers.warmup import warm_up_providers\n"
        "warm_up_providers(queues=['default'])\n"
        "print('torch' in sys.modules)\n"
        "warm_up_providers(queues=['gpu'])\n"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    out = run_fresh_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]


def test_warm_up_racing_the_first_job_in_a_fresh_process(demo_assets):
    """The embedded server warms up in a thread while the first job may already run: both
    import diffusers at once, which must not break either."""
    code = (
        "import django, sys, threading; django.setup()\n"
        "from providers.diffusers_local import DiffusersProvider\n"
        "from providers.base import GenerationSpec, ModelSpec, NullSink\n"
        "from providers.warmup import warm_up_in_background\n"
        "t = warm_up_in_background()\n"
        "spec = GenerationSpec("
        f"model=ModelSpec(pipeline_type='sd', model={str(demo_assets['model'])!r}),"
        " prompt='a kite', width=64, height=64, steps=2, seed=3)\n"
        "out = DiffusersProvider(num_threads=1).generate(spec, NullSink())\n"
        "t.join()\n"
        "print(out[0].image.size)\n"
    )
    out = run_fresh_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "(64, 64)"
