"""Schemathesis against ``/api/schema/``: EVERY operation, in-process through Django's WSGI
handler, once as a signed-in non-staff user and once as staff (and the operations that need no
login once more without credentials), with every built-in check (schemathesis 4:
``call_and_validate`` runs the enabled built-ins): ``not_a_server_error``,
``status_code_conformance``, ``content_type_conformance``, ``response_headers_conformance``,
``response_schema_conformance``, ``positive_data_acceptance``, ``negative_data_rejection``
(see :func:`invalid_data_refused`), ``missing_required_header``, ``unsupported_method``,
``allow_header_conformance`` and ``ignored_auth`` (``use_after_free`` and
``ensure_resource_availability`` are on too; they act in stateful runs only).

Properties this states about the API:
- no 5xx, except 503 with a dependency-down code (a provider, the broker or Civitai not
  reachable here: the documented "configure it / try later" answer);
- every status an operation answers is documented in the schema, with the media type, headers
  and body it documents (errors: the ``Error`` component ``{"code", "message", "fields"?}``,
  see ``core.schema``);
- a request the schema calls valid is not refused as malformed. ``positive_data_acceptance``
  takes 400/409/503 too: a schema cannot say that a LoRA named in a prompt exists, that a
  folder is in the library or that a download is not already running;
- a request the schema calls invalid (too long, out of range, not in the enum, not a date,
  missing a required field) is refused with a 4xx; only values of another JSON type may be
  converted (DRF's fields do that on purpose: ``CharField`` takes ``5`` as ``"5"``) and a query
  parameter sent empty may count as omitted.

Deterministic (hypothesis ``derandomize``; schemathesis ``seed``): ``MAX_EXAMPLES`` (50) per
operation and identity, plus the coverage phase (boundary and invalid values of every
parameter). ``SCHEMATHESIS_MAX_EXAMPLES`` / ``SCHEMATHESIS_COVERAGE=0`` shrink a local run.

Destructive operations (delete, bulk-delete, move, scan, restore) run on the test database and
a library in ``tmp_path``; a library root that staff point at an existing folder outside
``tmp_path`` is redirected to a folder inside it. Civitai calls go to the local fake Civitai,
remote providers to an unused loopback port, and :func:`loopback_only` fails the test if
anything tries to connect to (or resolve) a host that is not this machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.factories import ModelProfileFactory, UserFactory
from tests.support.fake_civitai import fake_civitai, fake_civitai_server  # noqa: F401

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"))
SEED = 20241112
# A dependency that is not configured here answers 503 with one of these codes (e.g. prompt
# enhancing without PARASAIL_API_KEY): documented, not a crash. Every other 5xx fails.
DEPENDENCY_DOWN = {"provider_unavailable", "broker_unavailable", "civitai_unavailable",
                   # The A1111/OpenAI adapters wait for their job; no worker runs here, so a
                   # valid request ends in the documented "try later" 503 (COMPAT_WAIT_SECONDS).
                   "job_timeout"}
# Nothing listens here (port 9, "discard"): a remote provider that were called gets a refused
# connection on loopback instead of a request to the internet.
UNUSED_LOOPBACK = "http://127.0.0.1:9"


def _error_code(response) -> str | None:
    """The code of a JSON error body: ours ``{"code"}``, OpenAI's ``{"error": {"code"}}``."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return body.get("code") or error.get("code")


def no_server_error(ctx, response, case):
    """``not_a_server_error`` except 503 with a dependency-down code (see above)."""
    if response.status_code == 503:
        if _error_code(response) in DEPENDENCY_DOWN:  # OpenAI's error shape too
            return None
    return not_a_server_error(ctx, response, case)


def _only_a_type_changed(case) -> bool:
    """Whether a negative ``case`` differs from a valid one only by the JSON type of values."""
    data = case.meta.phase.data if case.meta is not None else None
    if isinstance(data, CoveragePhaseData):
        return data.scenario == CoverageScenario.INCORRECT_TYPE
    mutations = getattr(data, "mutations", ())
    if mutations:
        return all(set(m.keywords) <= {"type"} for m in mutations)
    description = (getattr(data, "description", None) or "").lower()
    return "incorrect type" in description or "violates `type`" in description


def _empty(value) -> bool:
    return value == "" or (isinstance(value, list) and bool(value)
                           and all(item == "" for item in value))


def _only_empty_query_values(case) -> bool:
    """Whether the parameters a negative ``case`` made invalid are all query parameters sent
    empty (``?excluded=``)."""
    data = case.meta.phase.data if case.meta is not None else None
    names = {m.parameter for m in getattr(data, "mutations", ()) if m.parameter}
    if getattr(data, "parameter", None):
        names.add(data.parameter)
    query = case.query or {}
    return bool(names) and all(name in query and _empty(query[name]) for name in names)


def invalid_data_refused(ctx, response, case):
    """``negative_data_rejection`` with two documented leniencies: a value of another JSON
    type (DRF's fields convert on purpose: ``CharField`` takes ``5`` as ``"5"``,
    ``BooleanField`` takes ``0``/``1``, ``?favorite=null`` means "no filter"), and a query
    parameter sent empty, which counts as omitted (HTML GET forms send empty fields; the LoRA
    list applies its defaults then). Every other violation (length, range, enum, format,
    required, pattern) must be refused."""
    if _only_a_type_changed(case) or _only_empty_query_values(case):
        return None
    return negative_data_rejection(ctx, response, case)


CONFIG = SchemathesisConfig.from_dict({
    "seed": SEED,
    "phases": {"coverage": {"enabled": os.environ.get("SCHEMATHESIS_COVERAGE", "1") != "0"}},
    "checks": {"positive_data_acceptance": {
        "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "503"]}},
})
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(),
                                        config=CONFIG)


def _anonymous_allowed(ctx) -> bool:
    """Operations whose security requirements include ``{}`` (no credentials: AllowAny)."""
    return {} in (ctx.operation.definition.raw.get("security") or [])


public_schema = schema.include(func=_anonymous_allowed)

pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)
FUZZ = hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                           database=None, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------------- no traffic out
def _is_local(host: str) -> bool:
    if host in ("localhost", "testserver"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or (
        isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None
        and address.ipv4_mapped.is_loopback)


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse (and record) every connection or name lookup that would leave this machine."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(str(address[0])):
            attempts.append(f"connect {address!r}")
            raise OSError(101, "Network is unreachable (test: loopback only)")

    def connect(sock, address):
        guard(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        guard(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name and not _is_local(name.strip("[]")):
            attempts.append(f"resolve {name!r}")
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"traffic that would leave loopback: {attempts[:5]}"


# ------------------------------------------------------------------------- the world
def _token(*, staff: bool) -> str:
    from rest_framework.authtoken.models import Token

    user = UserFactory(username="fuzz-staff" if staff else "fuzz")
    if staff and not user.is_staff:
        user.is_staff = True
        user.save()
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def world(fake_civitai, loopback_only, tmp_path, settings):
    """Real objects for generated ids to hit (sequences start at 1, and hypothesis tries small
    numbers first): a model profile used by a generation request, a library root with a LoRA
    and an example image, a public image of the fuzzing user with a tag and a project, own and
    shared styles and themes, a favorite, a prompt helper with two versions, a usage log; every
    file under ``tmp_path``. Returns ``tmp_path``.

    No worker runs the queued jobs (one would still be writing while the database is flushed
    between examples: a deadlock on PostgreSQL). The A1111 and OpenAI adapters, which answer
    when their job has ended, give up after ``COMPAT_WAIT_SECONDS`` (50 ms here) with 503
    ``job_timeout``; their full runs are tests/compat."""
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.uploadedfile import SimpleUploadedFile

    from example_images.services.files import example_import
    from images.models import Image, UsageLog
    from images.services import generation_create
    from images.services import library as library
    from loras.models import LibraryRoot
    from loras.services import lora_register
    from providers import registry
    from tests.factories import _png
    from tests.support.lora_files import write_lora

    settings.THROTTLE_GENERATE_RATE = ""
    settings.COMPAT_WAIT_SECONDS = 0.05
    settings.LORA_TRASH_DIR = str(tmp_path / "trash")
    settings.EXAMPLE_IMAGES_ROOT = tmp_path / "examples"
    settings.EXAMPLE_IMAGES_IMPORT_ROOTS = [str(tmp_path / "import")]
    settings.EXAMPLE_IMAGES_OPEN_FOLDER = False
    settings.WEBHOOK_URL = ""
    settings.IMAGE_PROVIDERS = {  # an empty URL stays empty (that provider is not configured)
        name: ({**conf, "OPTIONS": {**conf["OPTIONS"], "base_url": UNUSED_LOOPBACK}}
               if conf.get("OPTIONS", {}).get("base_url") else conf)
        for name, conf in settings.IMAGE_PROVIDERS.items()}
    registry.reset()
    ModelProfileFactory()
    root_dir = tmp_path / "lib"
    root_dir.mkdir()
    LibraryRoot.objects.create(name="lib", path=str(root_dir))
    write_lora(root_dir / "one.safetensors")
    lora = lora_register(path=str(root_dir / "one.safetensors"))
    example_import(lora=lora, uploads=[SimpleUploadedFile("ex.png", _png())])
    _token(staff=False)
    _token(staff=True)
    user = get_user_model().objects.get(username="fuzz")
    staff = get_user_model().objects.get(username="fuzz-staff")
    gen = generation_create(user=user, params={"prompt": "a kite"}, enqueue=False)
    image = Image.objects.create(user=user, request=gen, file=ContentFile(_png(), "x.png"),
                                 thumbnail=ContentFile(_png(fmt="WEBP"), "x.webp"), seed=1,
                                 steps=1,
                                 guidance_scale=1.0, prompt="a kite", provider="fake",
                                 model_name="Fake", is_public=True)
    project = library.project_create(user=user, data={"name": "kites", "is_public": True,
                                                      "cover": image})
    library.image_update(image=image, user=user, data={"tags": ["sky blue", "été"],
                                                       "project": project})
    library.style_create(user=user, data={"name": "ink", "prompt_template": "{prompt}, ink"})
    library.style_create(user=staff, data={"name": "house", "prompt_template": "{prompt}",
                                           "is_shared": True})
    theme = library.theme_create(user=staff, data={"name": "sea", "terms": ["wave"],
                                                   "is_shared": True})
    library.theme_create(user=user, data={"name": "mine", "terms": ["kite"]})
    library.theme_favorite_add(user=user, theme=theme)
    helper = library.prompt_helper_create(user=user, data={"name": "kite", "prompt": "a kite"})
    library.prompt_helper_update(helper=helper, user=user, data={"prompt": "a red kite"})
    UsageLog.objects.create(user=user, request=gen, provider="fake", model_name="Fake",
                            image_count=1, lora_names=["one"])
    return tmp_path


def _keep_roots_in(case, tmp_path) -> None:
    """A library root body naming an existing folder outside ``tmp_path`` (``/``, ``/tmp``)
    names one inside it instead: a later scan or move then stays in the test's folder. Paths
    that do not exist, or are relative, go as generated (their validation is fuzzed)."""
    body = case.body
    if (case.operation.path.startswith("/api/library-roots/") and isinstance(body, dict)
            and isinstance(body.get("path"), str)):
        path = body["path"]
        try:
            outside = (os.path.isabs(path) and os.path.isdir(path)
                       and not os.path.realpath(path).startswith(str(tmp_path)))
        except (ValueError, OSError):  # NUL bytes, too long
            outside = False
        if outside:
            elsewhere = tmp_path / "roots" / str(abs(hash(path)))
            elsewhere.mkdir(parents=True, exist_ok=True)
            body["path"] = str(elsewhere)


def _call(case, *, staff: bool | None, tmp_path):
    """Send ``case`` as the non-staff user, as staff, or (``staff=None``) without credentials,
    and run the checks."""
    _keep_roots_in(case, tmp_path)
    headers = {} if staff is None else {"Authorization": f"Token {_token(staff=staff)}"}
    return case.call_and_validate(headers=headers,
                                  excluded_checks=[not_a_server_error, negative_data_rejection],
                                  additional_checks=[no_server_error, invalid_data_refused])


@schema.parametrize()
@FUZZ
def test_api_as_user(case, world):
    # call_and_validate raises on a failed check; the assert states the main property plainly.
    response = _call(case, staff=False, tmp_path=world)
    assert response.status_code < 500 or _error_code(response) in DEPENDENCY_DOWN


@schema.parametrize()
@FUZZ
def test_api_as_staff(case, world):
    response = _call(case, staff=True, tmp_path=world)
    assert response.status_code < 500 or _error_code(response) in DEPENDENCY_DOWN


@public_schema.parametrize()
@FUZZ
def test_public_api_anonymously(case, world):
    # What needs no login (gallery, public images, tags) is fuzzed without credentials too:
    # anonymous requests take other paths (GET /api/gallery/?lora=%C2%B3 was a 500 for them).
    response = _call(case, staff=None, tmp_path=world)
    assert response.status_code < 500 or _error_code(response) in DEPENDENCY_DOWN
