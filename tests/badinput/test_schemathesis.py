"""Schemathesis against ``/api/schema/``: every operation, in-process through Django's WSGI
handler, authenticated with a DRF token. Checks: no 5xx (``not_a_server_error``) and every
response body conforms to the schema (``response_schema_conformance``).

Deterministic (``derandomize``) and small (``MAX_EXAMPLES`` per operation) so the module runs in
a few minutes on 2 cores.

Two identities, nothing excluded:
- every operation runs as a signed-in NON-staff user. Staff-only writes then answer 403 (the
  permissions matrix covers that); this keeps random ``path`` values from becoming library roots
  that ``POST /api/loras/scan/`` would then walk (``/`` is a valid directory).
- the library-root operations run again as STAFF, so their validation is fuzzed too (no scan is
  started by them).

Civitai calls (refresh, downloads) go to the local fake Civitai server (``fake_civitai``).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.factories import ModelProfileFactory, UserFactory
from tests.support.fake_civitai import fake_civitai, fake_civitai_server  # noqa: F401

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
# A dependency that is not configured here answers 503 with one of these codes (e.g. prompt
# enhancing without PARASAIL_API_KEY): the documented "try later / configure it" answer, not a
# crash. Every other 5xx fails.
DEPENDENCY_DOWN = {"provider_unavailable", "broker_unavailable", "civitai_unavailable"}


def no_server_error(ctx, response, case):
    """``not_a_server_error`` except 503 with a dependency-down code (see above)."""
    if response.status_code == 503:
        try:
            if response.json().get("code") in DEPENDENCY_DOWN:
                return None
        except ValueError:
            pass
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, response_schema_conformance]

# Phases: examples, coverage (boundary and invalid values of every parameter and body, found
# the 5xx fixed so far) and fuzzing (MAX_EXAMPLES positive and negative cases). About 4 minutes
# on 2 cores; SCHEMATHESIS_COVERAGE=0 leaves the coverage phase out (about 3 minutes).
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": os.environ.get("SCHEMATHESIS_COVERAGE", "1") != "0"}}})
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(),
                                        config=CONFIG)
staff_schema = schema.include(path_regex=r"^/api/library-roots/")

pytestmark = pytest.mark.django_db(transaction=True)
FUZZ = hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                           database=None, suppress_health_check=list(HealthCheck))


def _token(*, staff: bool) -> str:
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="fuzz-staff" if staff else "fuzz")
    if staff:
        user.is_staff = True
        user.save()
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def world(fake_civitai, tmp_path, settings):
    """Some real objects for the generated ids to hit: a model profile, a library root with a
    LoRA, a job, a generation request and an image of the fuzzing user."""
    from images.models import Image
    from images.services import generation_create
    from loras.models import LibraryRoot
    from loras.services import lora_register
    from tests.support.lora_files import write_lora

    settings.THROTTLE_GENERATE_RATE = ""
    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    ModelProfileFactory()
    root_dir = tmp_path / "lib"
    root_dir.mkdir()
    LibraryRoot.objects.create(name="lib", path=str(root_dir))
    write_lora(root_dir / "one.safetensors")
    lora_register(path=str(root_dir / "one.safetensors"))
    key = _token(staff=False)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="fuzz")
    gen = generation_create(user=user, params={"prompt": "a kite"}, enqueue=False)
    Image.objects.create(user=user, request=gen, file="images/x.png", seed=1, steps=1,
                         guidance_scale=1.0, prompt="a kite", provider="fake", model_name="Fake")
    return key


@schema.parametrize()
@FUZZ
def test_api_as_user(case, world):
    # call_and_validate raises on a failed check; the assert states the property plainly.
    response = case.call_and_validate(headers={"Authorization": f"Token {world}"}, checks=CHECKS)
    assert response.status_code < 500 or response.json().get("code") in DEPENDENCY_DOWN


@staff_schema.parametrize()
@FUZZ
def test_library_roots_as_staff(case, world):
    key = _token(staff=True)
    response = case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=CHECKS)
    assert response.status_code < 500 or response.json().get("code") in DEPENDENCY_DOWN
