"""Production settings: ``manage.py check --deploy`` is clean (no warnings) with the environment
variables documented in the README, and the secrets come only from the environment."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The README "Production settings" section documents these.
DOCUMENTED_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "atelier.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://atelier.example.com",
    "DATABASE_URL": "postgres://atelier:pw@127.0.0.1:5432/atelier",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def _manage(*args, env):
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    # A fresh var dir: nothing of the developer's environment (.env, local DB) is involved.
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=180)


def test_check_deploy_is_clean_with_the_documented_environment(tmp_path):
    out = _manage("check", "--deploy", "--fail-level", "WARNING",
                  env={**DOCUMENTED_ENV, "ATELIER_VAR_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "System check identified no issues (0 silenced)." in out.stdout


def test_production_settings_values(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
            "s.SECURE_HSTS_SECONDS > 0, s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS, "
            "s.EMBEDDED_WORKER, s.SECRET_KEY == __import__('os').environ['DJANGO_SECRET_KEY'])")
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**base, **DOCUMENTED_ENV, "ATELIER_VAR_DIR": str(tmp_path)},
                         timeout=180)
    assert out.stdout.split() == ["False", "True", "True", "True", "True",
                                  "['atelier.example.com']", "['https://atelier.example.com']",
                                  "False", "True"], out.stderr[-3000:]


def test_missing_secrets_refuse_to_start(tmp_path):
    """No built-in default for the secret key or the allowed hosts in production."""
    for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"):
        env = {k: v for k, v in DOCUMENTED_ENV.items() if k != name}
        out = _manage("check", env={**env, "ATELIER_VAR_DIR": str(tmp_path)})
        assert out.returncode != 0, name
        assert "ImproperlyConfigured" in out.stderr and name in out.stderr, out.stderr[-2000:]
