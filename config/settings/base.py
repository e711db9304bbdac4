"""Settings shared by every environment. Every value can come from the environment (django-environ).

Modes:
- embedded default (no ``REDIS_URL``): SQLite under ``var/``, in-memory Celery transport served by
  a worker thread inside the web process, in-memory channel layer. One process, no Redis.
- Redis mode (``REDIS_URL`` set): Celery broker and channel layer on Redis, separate workers.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("ATELIER_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

# No code path may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# No diffusers/transformers chatter or progress bars, no torchvision warnings (core/quiet.py).
from core.quiet import quiet_model_libraries  # noqa: E402

quiet_model_libraries()

# -------------------------------------------------------------------- core
# DJANGO_SECRET_KEY from the environment, else a key generated once per install and kept in
# var/secret_key (mode 0600): never a key known from the source.
_secret = env("DJANGO_SECRET_KEY", default="") or env("SECRET_KEY", default="")
if not _secret:
    from core.secret_key import install_secret_key

    _secret = install_secret_key(VAR_DIR)
SECRET_KEY = _secret
# Off unless asked for (DEBUG=1 or DJANGO_DEBUG=1): debug pages list URLs and settings.
DEBUG = env.bool("DJANGO_DEBUG", default=env.bool("DEBUG", default=False))
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
# Page languages (issue 15): English, Simplified Chinese, Japanese; catalogs in locale/ (the
# compiled .mo files are committed, so running needs no GNU gettext). The choice is kept in
# Django's language cookie (set by /i18n/setlang/); API messages follow Accept-Language.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc files served by the app (no CDN)
    "axes",
]
LOCAL_APPS = [
    "core",
    "jobs",
    "providers",
    "loras",
    "images",
    "example_images",
    "compat",  # A1111 API (/sdapi/v1/) and OpenAI Images API (/v1/) adapters (issue 14)
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # after sessions, before common (Django docs)
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into core.login_limits' 429.
    "axes.middleware.AxesMiddleware",
]
# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = [
    "core.login_limits.LoginLockoutBackend",  # django-axes, when a request is given
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generate"
LOGOUT_REDIRECT_URL = "login"

# -------------------------------------------------------------------- database
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'atelier.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs in its own thread, so persistent connections
    # (CONN_MAX_AGE) do not carry over; Django's psycopg pool does (Django >= 5.1).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env.int("DB_POOL_MAX", default=10), "timeout": 10}
    # The pool checks a connection before handing it out (psycopg_pool check_connection):
    # after a PostgreSQL restart a dead pooled connection would otherwise answer a 500.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Requests and the embedded worker thread write at once. BEGIN IMMEDIATE takes the write
    # lock when a transaction starts, so writers queue on the busy timeout (seconds) instead of
    # failing with "database is locked" when a read-then-write transaction (select_for_update
    # is a no-op here) cannot upgrade its lock; WAL lets readers go on during a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )

# -------------------------------------------------------------------- files
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
STORAGES = {
    "default": {"BACKEND": "core.storage.AtomicFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MODELS_DIR = Path(env("MODELS_DIR", default=str(VAR_DIR / "models")))
# VAEs a generate request may name in "vae" (A1111 models/VAE layout; docs/samplers.md#vae).
VAE_DIR = Path(env("VAE_DIR", default=str(MODELS_DIR / "VAE")))
# Checkpoint folders (os.pathsep-separated) whose files become model profiles, and textual
# inversion embeddings usable by name in prompts (A1111 models/ layout; docs/checkpoints.md).
CHECKPOINT_ROOTS = [p for p in env("CHECKPOINT_ROOTS", default=str(
    MODELS_DIR / "Stable-diffusion")).split(os.pathsep) if p]
EMBEDDING_ROOTS = [p for p in env("EMBEDDING_ROOTS", default=str(
    MODELS_DIR / "embeddings")).split(os.pathsep) if p]
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=256)  # pixels, longest side

# -------------------------------------------------------------------- redis / celery / channels
REDIS_URL = env("REDIS_URL", default="")
EMBEDDED_WORKER = env.bool("EMBEDDED_WORKER", default=not REDIS_URL)

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 3600} if REDIS_URL
    # The in-memory transport polls its queues; kombu's default 1 s would add up to 1 s per job.
    # Measured idle cost of the serve process: 5 ms -> 3.7 % of a core, 20 ms -> 1.2 %.
    else {"polling_interval": env.float("MEMORY_BROKER_POLL_SECONDS", default=0.01)}
)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)  # seconds
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A running job older than this (seconds) outlived the task time limit: its worker died.
JOB_STALE_SECONDS = env.int("JOB_STALE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 300)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "jobs.reap", "schedule": 300.0, "options": {"queue": "default"}},
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Seconds between two progress snapshots written and pushed for one job (status changes and the
# final step always go out at once).
JOB_PROGRESS_MIN_INTERVAL = env.float("JOB_PROGRESS_MIN_INTERVAL", default=0.2)
# Seconds between two reads of a running job's cancel flag.
JOB_CANCEL_CHECK_INTERVAL = env.float("JOB_CANCEL_CHECK_INTERVAL", default=0.1)

# -------------------------------------------------------------------- providers
IMAGE_PROVIDERS = {
    "diffusers_local": {
        "BACKEND": "providers.diffusers_local.DiffusersProvider",
        "QUEUE": "gpu",
        "OPTIONS": {
            "device": env("DIFFUSERS_DEVICE", default="auto"),
            "max_cached_pipelines": env.int("DIFFUSERS_MAX_PIPELINES", default=2),
            # torch intra-op threads; 0 keeps torch's default (one per core).
            "num_threads": env.int("DIFFUSERS_NUM_THREADS", default=0),
        },
    },
    "fake": {"BACKEND": "providers.fake.FakeProvider", "QUEUE": "default", "OPTIONS": {}},
}
DEMO_MODEL_DIR = MODELS_DIR / "demo-sd-tiny"
DEMO_LORA_DIR = MODELS_DIR / "loras"

# -------------------------------------------------------------------- LoRA library
# Folders of LoRA files, separated by os.pathsep; each becomes a LibraryRoot.
LORA_ROOTS = [p for p in env("LORA_ROOTS", default=str(DEMO_LORA_DIR)).split(os.pathsep) if p]
# Where deleted library files go (restorable); one sub-folder per root.
LORA_TRASH_DIR = Path(env("LORA_TRASH_DIR", default=str(VAR_DIR / "trash")))
LORA_SCAN_WORKERS = env.int("LORA_SCAN_WORKERS", default=2)  # files hashed in parallel
# The library follows its folders (loras/watcher.py): a scan starts once the roots have been
# quiet this many seconds after a change; a periodic rescan as fallback (0: none).
LIBRARY_WATCH = env.bool("LIBRARY_WATCH", default=True)
LIBRARY_WATCH_DEBOUNCE_SECONDS = env.float("LIBRARY_WATCH_DEBOUNCE_SECONDS", default=1.0)
LIBRARY_RESCAN_SECONDS = env.float("LIBRARY_RESCAN_SECONDS", default=3600.0)
# 1 MiB chunks stay in the CPU caches: 1.4x faster than 8 MiB from a cold page cache here.
LORA_HASH_CHUNK_BYTES = env.int("LORA_HASH_CHUNK_BYTES", default=1024 * 1024)
LORA_HEADER_MAX_BYTES = env.int("LORA_HEADER_MAX_BYTES", default=64 * 1024 * 1024)
LORA_ORGANIZE_TEMPLATE = env("LORA_ORGANIZE_TEMPLATE", default="{base_model}/{first_tag}")

# -------------------------------------------------------------------- Civitai
CIVITAI_BASE_URL = env("CIVITAI_BASE_URL", default="https://civitai.com")
CIVITAI_API_KEY = env("CIVITAI_API_KEY", default="")
CIVITAI_TIMEOUT = env.float("CIVITAI_TIMEOUT", default=30.0)  # seconds per request
CIVITAI_MAX_RETRIES = env.int("CIVITAI_MAX_RETRIES", default=5)
CIVITAI_NOT_FOUND_TTL = env.int("CIVITAI_NOT_FOUND_TTL", default=7 * 24 * 3600)  # seconds
CIVITAI_BACKOFF_SECONDS = env.float("CIVITAI_BACKOFF_SECONDS", default=1.0)  # doubles per retry
CIVITAI_BACKOFF_MAX_SECONDS = env.float("CIVITAI_BACKOFF_MAX_SECONDS", default=30.0)
CIVITAI_MAX_RETRY_AFTER = env.float("CIVITAI_MAX_RETRY_AFTER", default=300.0)  # cap, seconds
CIVITAI_MIN_INTERVAL = env.float("CIVITAI_MIN_INTERVAL", default=0.0)  # seconds between calls
# Longest rate-limit pause an HTTP request waits before answering 429 (jobs wait longer).
CIVITAI_SYNC_MAX_WAIT = env.float("CIVITAI_SYNC_MAX_WAIT", default=10.0)
CIVITAI_PREVIEW_MAX_NSFW_LEVEL = env.int("CIVITAI_PREVIEW_MAX_NSFW_LEVEL", default=0)  # 0 = any
CIVITAI_PREVIEW_MAX_BYTES = env.int("CIVITAI_PREVIEW_MAX_BYTES", default=20 * 1024 * 1024)
# Hosts outbound fetches (previews from URL, downloads) may reach; private addresses are
# refused unless OUTBOUND_ALLOW_PRIVATE is set (tests talk to fake servers on loopback).
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[
    "civitai.com", "image.civitai.com", "civitai.red"])
# Write <stem>.civitai.info and A1111's <stem>.json next to LoRAs after Civitai fetches and
# edits, so other tools see them (docs/library.md#sidecars).
WRITE_SIDECARS = env.bool("WRITE_SIDECARS", default=True)
# Seconds between two Civitai update checks queued by beat (docs/library.md#civitai-update-check).
LORA_UPDATE_CHECK_INTERVAL = env.float("LORA_UPDATE_CHECK_INTERVAL", default=24 * 3600.0)
CELERY_BEAT_SCHEDULE["lora-update-check"] = {
    "task": "loras.update_check_scheduled", "schedule": LORA_UPDATE_CHECK_INTERVAL,
    "options": {"queue": "default"}}
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=False)
DOWNLOAD_CONCURRENCY = env.int("DOWNLOAD_CONCURRENCY", default=2)
DOWNLOAD_REQUEUE_SECONDS = env.float("DOWNLOAD_REQUEUE_SECONDS", default=2.0)
DOWNLOAD_PATH_TEMPLATE = env("DOWNLOAD_PATH_TEMPLATE", default="{base_model}/{first_tag}")
# A real checkpoint to serve instead of the demo (a diffusers folder). When set, `make run`
# creates a "default" profile for it and skips building the demo model.
DEFAULT_CHECKPOINT = env("ATELIER_CHECKPOINT", default="")

# -------------------------------------------------------------------- example images (#4)
# One folder per LoRA, named by its sha256, so renames and moves never orphan the images.
EXAMPLE_IMAGES_ROOT = Path(env("EXAMPLE_IMAGES_ROOT", default=str(VAR_DIR / "example_images")))
EXAMPLE_IMAGES_LIMIT_PER_MODEL = env.int("EXAMPLE_IMAGES_LIMIT_PER_MODEL", default=8)
# Highest Civitai browsing level downloaded (bitmask values 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX).
EXAMPLE_IMAGES_NSFW_MAX = env.int("EXAMPLE_IMAGES_NSFW_MAX", default=2)
EXAMPLE_IMAGES_PAGE_SIZE = env.int("EXAMPLE_IMAGES_PAGE_SIZE", default=100)  # /images limit, 1-200
EXAMPLE_IMAGES_CONCURRENCY = env.int("EXAMPLE_IMAGES_CONCURRENCY", default=4)  # parallel fetches
EXAMPLE_IMAGES_MAX_BYTES = env.int("EXAMPLE_IMAGES_MAX_BYTES", default=30 * 1024 * 1024)
EXAMPLE_IMAGES_MAX_PIXELS = env.int("EXAMPLE_IMAGES_MAX_PIXELS", default=64_000_000)
EXAMPLE_IMAGES_OPTIMIZE = env.bool("EXAMPLE_IMAGES_OPTIMIZE", default=False)
EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM = env.int("EXAMPLE_IMAGES_OPTIMIZE_MAX_DIM", default=1024)  # px
EXAMPLE_IMAGES_WEBP_QUALITY = env.int("EXAMPLE_IMAGES_WEBP_QUALITY", default=85)
# Seconds before a download job paused by a rate limit or network error tries again, and how
# many such automatic retries a job makes before it fails (images already stored are kept).
EXAMPLE_IMAGES_RETRY_SECONDS = env.float("EXAMPLE_IMAGES_RETRY_SECONDS", default=30.0)
EXAMPLE_IMAGES_MAX_RETRIES = env.int("EXAMPLE_IMAGES_MAX_RETRIES", default=20)
# Server-side folders `POST /api/example-images/import/` may read from (os.pathsep-separated).
EXAMPLE_IMAGES_IMPORT_ROOTS = [p for p in env("EXAMPLE_IMAGES_IMPORT_ROOTS",
                                              default="").split(os.pathsep) if p]
# Open the folder with the desktop file manager (only when the server runs on your desktop).
EXAMPLE_IMAGES_OPEN_FOLDER = env.bool("EXAMPLE_IMAGES_OPEN_FOLDER", default=False)
EXAMPLE_IMAGES_GENERATE_WEIGHTS = [0.6, 1.0]
EXAMPLE_IMAGES_GENERATE_PROMPTS = [
    "{triggers}, portrait, detailed, best quality",
    "{triggers}, full body, outdoors, soft light",
    "{triggers}, close-up, studio lighting",
]

# -------------------------------------------------------------------- remote providers (#5)
# Every remote call has a timeout (seconds); 429/5xx/timeouts are retried REMOTE_MAX_RETRIES
# times with exponential backoff from REMOTE_BACKOFF_SECONDS, honouring Retry-After or the
# provider's retry hint up to REMOTE_MAX_RETRY_WAIT seconds (a longer hint fails the job at once,
# as retryable). A provider whose key or URL is empty is listed but answers 503.
REMOTE_TIMEOUT = env.float("REMOTE_TIMEOUT", default=120.0)
REMOTE_MAX_RETRIES = env.int("REMOTE_MAX_RETRIES", default=3)
REMOTE_BACKOFF_SECONDS = env.float("REMOTE_BACKOFF_SECONDS", default=1.0)
REMOTE_MAX_RETRY_WAIT = env.float("REMOTE_MAX_RETRY_WAIT", default=60.0)
PROVIDER_HEALTH_CACHE_SECONDS = env.int("PROVIDER_HEALTH_CACHE_SECONDS", default=30)
PROVIDER_HEALTH_TIMEOUT = env.float("PROVIDER_HEALTH_TIMEOUT", default=5.0)
_REMOTE = {"timeout": REMOTE_TIMEOUT, "max_retries": REMOTE_MAX_RETRIES,
           "backoff": REMOTE_BACKOFF_SECONDS, "max_retry_wait": REMOTE_MAX_RETRY_WAIT}
IMAGE_PROVIDERS.update({
    "sdnext": {"BACKEND": "providers.sdnext.SdnextProvider", "QUEUE": "default", "OPTIONS": {
        **_REMOTE, "base_url": env("SDNEXT_BASE_URL", default=""),  # e.g. http://127.0.0.1:7860
        "username": env("SDNEXT_USERNAME", default=""),  # HTTP Basic (--auth), optional
        "password": env("SDNEXT_PASSWORD", default=""),
        "poll_interval": env.float("SDNEXT_POLL_INTERVAL", default=0.5)}},
    "replicate": {"BACKEND": "providers.replicate.ReplicateProvider", "QUEUE": "default",
                  "OPTIONS": {
        **_REMOTE, "api_key": env("REPLICATE_API_TOKEN", default=""),
        "base_url": env("REPLICATE_BASE_URL", default="https://api.replicate.com/v1"),
        # Hosts that serve prediction outputs (fetched with the token).
        "output_hosts": env.list("REPLICATE_OUTPUT_HOSTS", default=["replicate.delivery"]),
        "wait_seconds": env.int("REPLICATE_WAIT_SECONDS", default=60),  # Prefer: wait=N, 1..60
        "poll_interval": env.float("REPLICATE_POLL_INTERVAL", default=1.0),
        "models": env.list("REPLICATE_MODELS", default=["black-forest-labs/flux-schnell"]),
        "upscale_model": env("REPLICATE_UPSCALE_MODEL", default="nightmareai/real-esrgan")}},
    "runware": {"BACKEND": "providers.runware.RunwareProvider", "QUEUE": "default", "OPTIONS": {
        **_REMOTE, "api_key": env("RUNWARE_API_KEY", default=""),
        "base_url": env("RUNWARE_BASE_URL", default="https://api.runware.ai/v1"),
        "models": env.list("RUNWARE_MODELS", default=["runware:100@1"])}},
    "gemini": {"BACKEND": "providers.gemini.GeminiProvider", "QUEUE": "default", "OPTIONS": {
        **_REMOTE, "api_key": env("GEMINI_API_KEY", default=""),
        "base_url": env("GEMINI_BASE_URL",
                        default="https://generativelanguage.googleapis.com/v1beta")}},
    "openai": {"BACKEND": "providers.openai.OpenaiProvider", "QUEUE": "default", "OPTIONS": {
        **_REMOTE, "api_key": env("OPENAI_API_KEY", default=""),
        "base_url": env("OPENAI_BASE_URL", default="https://api.openai.com/v1")}},
    "parasail": {"BACKEND": "providers.parasail.ParasailProvider", "QUEUE": "default",
                 "OPTIONS": {
        **_REMOTE, "api_key": env("PARASAIL_API_KEY", default=""),
        "base_url": env("PARASAIL_BASE_URL", default="https://api.parasail.io/v1"),
        "chat_model": env("PARASAIL_CHAT_MODEL", default="parasail-llama-33-70b-fp8")}},
})

# -------------------------------------------------------------------- edit and upscale (#5)
# Largest uploaded image or mask for POST /api/edit/ and /api/upscale/, in bytes.
EDIT_UPLOAD_MAX_BYTES = env.int("EDIT_UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
# Largest source image (width x height, pixels) an edit or upscale accepts; checked from the
# header before decoding, so decompression bombs are refused cheaply.
EDIT_MAX_PIXELS = env.int("EDIT_MAX_PIXELS", default=4096 * 4096)
# Largest upscale result (width x height, pixels); larger requests are refused before queuing.
UPSCALE_MAX_OUTPUT_PIXELS = env.int("UPSCALE_MAX_OUTPUT_PIXELS", default=8192 * 8192)
# Default denoising strength of img2img/inpaint (0..1).
EDIT_DEFAULT_STRENGTH = env.float("EDIT_DEFAULT_STRENGTH", default=0.75)
# diffusers_local: a preview image every N denoising steps in the job snapshot (0 = off); a
# model profile's options["preview_every"] overrides it.
DIFFUSERS_PREVIEW_EVERY = env.int("DIFFUSERS_PREVIEW_EVERY", default=0)
IMAGE_PROVIDERS["diffusers_local"]["OPTIONS"].update(
    preview_every=DIFFUSERS_PREVIEW_EVERY,
    # Also evict cached pipelines while their parameters exceed this many bytes (0 = count only).
    max_cache_bytes=env.int("DIFFUSERS_MAX_CACHE_BYTES", default=0),
)

# -------------------------------------------------------------------- images app (#6)
# Estimated cost in USD per generated image, by provider name or "provider/model profile name"
# (JSON in the env). Local providers are free (missing = 0).
PROVIDER_COSTS = env.json("PROVIDER_COSTS", default={
    "replicate": 0.0039, "runware": 0.0006, "gemini": 0.039, "openai": 0.04,
})
# Post-generation hooks, run in order; each one isolated (see images/hooks.py).
IMAGES_POST_GENERATION_HOOKS = env.list("IMAGES_POST_GENERATION_HOOKS", default=[
    "images.hooks.hook_thumbnails", "images.hooks.hook_tags", "images.hooks.hook_usage",
    "images.hooks.hook_narration", "images.hooks.hook_webhook",
])
TAGS_FROM_PROMPT_MAX = env.int("TAGS_FROM_PROMPT_MAX", default=8)
# Text-to-speech (images/narration.py): espeak-ng; NARRATION_AUTO narrates every new image.
NARRATION_ENGINE = env("NARRATION_ENGINE", default="images.narration.EspeakEngine")
NARRATION_ESPEAK_PATH = env("NARRATION_ESPEAK_PATH", default="espeak-ng")
NARRATION_VOICE = env("NARRATION_VOICE", default="en")
NARRATION_SPEED_WPM = env.int("NARRATION_SPEED_WPM", default=160)
NARRATION_MAX_CHARS = env.int("NARRATION_MAX_CHARS", default=1000)
NARRATION_AUTO = env.bool("NARRATION_AUTO", default=False)
# Webhook: POST of each finished generation's job snapshot, signed with
# X-Atelier-Signature: sha256=<HMAC-SHA256(body, WEBHOOK_SECRET)>; only to this one URL.
WEBHOOK_URL = env("WEBHOOK_URL", default="")
WEBHOOK_SECRET = env("WEBHOOK_SECRET", default="")
WEBHOOK_RETRIES = env.int("WEBHOOK_RETRIES", default=3)
WEBHOOK_BACKOFF_SECONDS = env.float("WEBHOOK_BACKOFF_SECONDS", default=1.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Prompt embeddings for similarity (images/embeddings.py): "auto" uses a locally installed
# sentence-transformers model (EMBEDDER_MODEL, loaded offline) when there is one, else hashing
# TF-IDF (scikit-learn, no download); or a dotted class path. Stored vectors made by another
# embedder are recomputed once, on the next similarity search.
EMBEDDER = env("EMBEDDER", default="auto")
EMBEDDER_MODEL = env("EMBEDDER_MODEL", default="all-MiniLM-L6-v2")


# -------------------------------------------------------------------- reliability (#7)
# A message taken by a worker that dies without acknowledging it (SIGKILL, power loss) goes back
# to its queue after this many seconds (checked every CELERY_UNACKED_RESTORE_INTERVAL); it must
# exceed the task time limit, or a long task would also run on a second worker.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT",
                                    default=CELERY_TASK_TIME_LIMIT + 300)  # seconds
# Publishing to a dead broker fails fast (the API answers 503 broker_unavailable): seconds to
# connect, and a short retry policy (kombu's default would retry for ~10 s per request).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2,
                                    "interval_step": 0.5, "interval_max": 1.0}
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=10.0),
        # kombu's own connection retries (publishing): once, not forever. Workers reconnect
        # through CELERY_BROKER_CONNECTION_RETRY / _MAX_RETRIES (measured: a 45 s outage).
        "max_retries": 1,
        # Seconds between two checks for messages past their visibility timeout (kombu's
        # default checks every 10th tick of 10 s: up to 100 s late).
        "unacked_restore_interval": env.float("CELERY_UNACKED_RESTORE_INTERVAL", default=60.0),
        "unacked_restore_throttle": 1,
    }
# A job still queued after this many seconds lost its task message (a broker restarted without
# persistence): the reaper fails it with ``queue_lost``. 0 turns this off.
JOB_QUEUED_STALE_SECONDS = env.int("JOB_QUEUED_STALE_SECONDS", default=24 * 3600)
# Leases and the dispatcher (jobs/lease.py, jobs/dispatcher.py), in seconds: a worker's claim
# on a running job lasts JOB_LEASE_SECONDS and its heartbeat renews it every
# JOB_HEARTBEAT_SECONDS; the dispatcher runs every JOB_DISPATCH_INTERVAL, re-queues (at most
# JOB_MAX_ATTEMPTS runs in all) or fails running jobs whose lease expired, and publishes again
# the task of a job queued for JOB_REPUBLISH_AFTER_SECONDS whose message the broker lost. It
# runs in the embedded server, or as `manage.py dispatch_jobs` (its own process: a queue
# backlog cannot delay it).
JOB_LEASE_SECONDS = env.float("JOB_LEASE_SECONDS", default=30.0)
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=JOB_LEASE_SECONDS / 3)
JOB_DISPATCH_INTERVAL = env.float("JOB_DISPATCH_INTERVAL", default=10.0)
JOB_REPUBLISH_AFTER_SECONDS = env.float("JOB_REPUBLISH_AFTER_SECONDS", default=20.0)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=3)
JOB_DISPATCH_BATCH = env.int("JOB_DISPATCH_BATCH", default=500)  # queued jobs per pass
# A queued job with no task recorded this long after its creation was never published (the
# process died between the commit and the publish): failed queue_lost.
JOB_UNPUBLISHED_FAIL_SECONDS = env.float("JOB_UNPUBLISHED_FAIL_SECONDS", default=60.0)
# Seconds between two runs of the stale-job reaper (beat); JOB_STALE_SECONDS is above.
CELERY_BEAT_SCHEDULE["reap-stale-jobs"]["schedule"] = env.float("JOB_REAP_INTERVAL",
                                                               default=300.0)
# Request rate limits (core/throttling.py), DRF "<count>/<s|min|hour|day>"; empty = off.
# Per user, on every endpoint that queues work or decodes images (POST only).
THROTTLE_GENERATE_RATE = env("THROTTLE_GENERATE_RATE", default="60/min")
THROTTLE_EDIT_RATE = env("THROTTLE_EDIT_RATE", default="30/min")
THROTTLE_UPSCALE_RATE = env("THROTTLE_UPSCALE_RATE", default="30/min")
THROTTLE_NARRATE_RATE = env("THROTTLE_NARRATE_RATE", default="30/min")
THROTTLE_EXAMPLE_IMPORT_RATE = env("THROTTLE_EXAMPLE_IMPORT_RATE", default="20/min")
THROTTLE_EXAMPLE_DOWNLOAD_RATE = env("THROTTLE_EXAMPLE_DOWNLOAD_RATE", default="20/min")
THROTTLE_EXAMPLE_GENERATE_RATE = env("THROTTLE_EXAMPLE_GENERATE_RATE", default="20/min")
THROTTLE_LORA_SCAN_RATE = env("THROTTLE_LORA_SCAN_RATE", default="10/min")
THROTTLE_CIVITAI_REFRESH_RATE = env("THROTTLE_CIVITAI_REFRESH_RATE", default="30/min")
THROTTLE_CIVITAI_REFRESH_ALL_RATE = env("THROTTLE_CIVITAI_REFRESH_ALL_RATE", default="5/min")
THROTTLE_DOWNLOADS_RATE = env("THROTTLE_DOWNLOADS_RATE", default="20/min")
THROTTLE_AUTO_ORGANIZE_RATE = env("THROTTLE_AUTO_ORGANIZE_RATE", default="10/min")
THROTTLE_PREVIEW_UPLOAD_RATE = env("THROTTLE_PREVIEW_UPLOAD_RATE", default="30/min")
THROTTLE_PNG_INFO_RATE = env("THROTTLE_PNG_INFO_RATE", default="60/min")  # POST /api/png-info/
# Token login, per client address, every attempt counted.
THROTTLE_LOGIN_RATE = env("THROTTLE_LOGIN_RATE", default="10/min")

# Login lockout (django-axes, core/login_limits.py): LOGIN_FAILURE_LIMIT failed logins for one
# account, or from one client address, lock that account / address out of the login form, the
# admin and the token endpoint for LOGIN_LOCKOUT_MINUTES (429 with Retry-After); a successful
# login clears the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # failures only: no row per successful login
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "core.login_limits.lockout_response"
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated,
# e.g. "127.0.0.1,10.0.0.0/8"); empty: the client is the TCP peer (core/client_ip.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Per-request cost limits (core/limits.py, core/body_limit.py).
# Request bodies larger than this (bytes) are answered 413 from Content-Length, before reading;
# bodies without Content-Length are cut off there. 0 = no cap.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=64 * 1024 * 1024)
# Pixels one request may ask for (width x height x n) or upload (sum over its images).
REQUEST_MAX_PIXELS = env.int("REQUEST_MAX_PIXELS", default=64 * 1024 * 1024)
# Files one request may upload or name (example-image import).
REQUEST_MAX_FILES = env.int("REQUEST_MAX_FILES", default=20)

# -------------------------------------------------------------------- DRF
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.ApiAutoSchema",  # + error responses per operation
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    # Per-user limits on views that declare a throttle_scope (core/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.CostRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Atelier API",
    "DESCRIPTION": "LoRA library and image generation: jobs, images, providers.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ and /api/redoc/ load their scripts from our static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Tags and operation ids of the native API come from the path after /api; the A1111 and
    # OpenAI adapters (/sdapi/v1/, /v1/) set their own tags (compat/schema.py).
    "SCHEMA_PATH_PREFIX": r"/api",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "LoraStatusEnum": "loras.models.LoraModel.Status",
        "JobStatusEnum": "jobs.models.Job.Status",
    },
}

# -------------------------------------------------------------------- logging
def _redis_next_db(url: str) -> str:
    """``url`` with the next Redis database number (``/0`` -> ``/1``), for the cache."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


# The cache gets its own Redis database: clearing it (cache.clear() is FLUSHDB) must never drop
# queued Celery messages or channel-layer data.
CACHE_REDIS_URL = env("CACHE_REDIS_URL", default=_redis_next_db(REDIS_URL) if REDIS_URL else "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_REDIS_URL}
        if REDIS_URL else
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_one_line": {"()": "core.quiet.ClientErrorsOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["client_errors_one_line"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"},
                # uvicorn (manage.py serve): start/stop and errors only, no per-request lines;
                # django.request logs one line per 4xx and a traceback per 5xx.
                "uvicorn": {"level": "WARNING"}, "axes": {"level": "ERROR"},
                # "No hostname was supplied" on every in-memory broker connection.
                "kombu.connection": {"level": "ERROR"}},
}

# -------------------------------------------------------------------- compatibility APIs (#14)
# The A1111 API (/sdapi/v1/) and the OpenAI Images API (/v1/) answer when the job has ended:
# the HTTP call waits at most COMPAT_WAIT_SECONDS (then 503 job_timeout, and the job is
# canceled). It wakes on the job's final event (channel layer), or without one reads the
# job's status every COMPAT_POLL_SECONDS near its end (compat/waiting.py). OpenAI image URLs
# (response_format "url") stay valid for COMPAT_URL_MAX_AGE seconds (OpenAI's: 60 minutes).
COMPAT_WAIT_SECONDS = env.float("COMPAT_WAIT_SECONDS", default=600.0)
COMPAT_POLL_SECONDS = env.float("COMPAT_POLL_SECONDS", default=0.01)
COMPAT_URL_MAX_AGE = env.int("COMPAT_URL_MAX_AGE", default=3600)

# -------------------------------------------------------------------- serve (#12)
# `manage.py serve` exits within this many seconds of SIGTERM/SIGINT (open requests get half).
SERVE_STOP_SECONDS = env.float("SERVE_STOP_SECONDS", default=8.0)

# Lists count at most this many rows per request (core/pagination.py): past it the API says
# ``count_exact: false`` instead of paying for an exact COUNT(*) of a 100,000-row table.
PAGINATION_COUNT_CAP = env.int("PAGINATION_COUNT_CAP", default=10_000)
