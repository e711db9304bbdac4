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

# ------------------------------------------------------------------------------ core
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-only-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = False
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
]
LOCAL_APPS = [
    "core",
    "jobs",
    "providers",
    "loras",
    "images",
    "example_images",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

# ------------------------------------------------------------------------------ database
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded worker thread writes while requests read: wait instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )

# ------------------------------------------------------------------------------ files
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
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=256)  # pixels, longest side

# ------------------------------------------------------------------------------ redis / celery / channels
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

# ------------------------------------------------------------------------------ providers
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

# ------------------------------------------------------------------------------ LoRA library
# Folders of LoRA files, separated by os.pathsep; each becomes a LibraryRoot.
LORA_ROOTS = [p for p in env("LORA_ROOTS", default=str(DEMO_LORA_DIR)).split(os.pathsep) if p]
# Where deleted library files go (restorable); one sub-folder per root.
LORA_TRASH_DIR = Path(env("LORA_TRASH_DIR", default=str(VAR_DIR / "trash")))
LORA_SCAN_WORKERS = env.int("LORA_SCAN_WORKERS", default=2)  # files hashed in parallel
# 1 MiB chunks stay in the CPU caches: 1.4x faster than 8 MiB from a cold page cache here.
LORA_HASH_CHUNK_BYTES = env.int("LORA_HASH_CHUNK_BYTES", default=1024 * 1024)
LORA_HEADER_MAX_BYTES = env.int("LORA_HEADER_MAX_BYTES", default=64 * 1024 * 1024)
LORA_ORGANIZE_TEMPLATE = env("LORA_ORGANIZE_TEMPLATE", default="{base_model}/{first_tag}")

# ------------------------------------------------------------------------------ Civitai
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
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=["civitai.com",
                                                                     "image.civitai.com"])
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=False)
DOWNLOAD_CONCURRENCY = env.int("DOWNLOAD_CONCURRENCY", default=2)
DOWNLOAD_REQUEUE_SECONDS = env.float("DOWNLOAD_REQUEUE_SECONDS", default=2.0)
DOWNLOAD_PATH_TEMPLATE = env("DOWNLOAD_PATH_TEMPLATE", default="{base_model}/{first_tag}")
# A real checkpoint to serve instead of the demo (a diffusers folder). When set, `make run`
# creates a "default" profile for it and skips building the demo model.
DEFAULT_CHECKPOINT = env("ATELIER_CHECKPOINT", default="")

# ------------------------------------------------------------------------------ DRF
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Atelier API",
    "DESCRIPTION": "LoRA library and image generation: jobs, images, providers.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "LoraStatusEnum": "loras.models.LoraModel.Status",
        "JobStatusEnum": "jobs.models.Job.Status",
    },
}

# ------------------------------------------------------------------------------ logging
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL else
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
