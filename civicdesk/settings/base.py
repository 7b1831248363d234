"""Settings shared by every environment. Values come from the environment (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from civicdesk.env import env_bool, env_float, env_int, env_list, env_str

# Django's generic classes (ModelAdmin, ModelForm, inlines and formsets) become subscriptable at runtime,
# so the code can name their model as the type stubs do: `admin.ModelAdmin[Office]`.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The public https origin Twilio calls (no trailing slash). Signatures are validated against it, and
# status-callback URLs are built from it. Empty means "use the request's own absolute URI".
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "django_htmx",
    "axes",
    "civicdesk",
    "common",
    "offices",
    "constituents",
    "messages.apps.MessagesConfig",
    "voice",
    "correspondence",
    "demo",
]

MIDDLEWARE = [
    # First, so that the deadline covers everything a webhook does with the database.
    "civicdesk.middleware.WebhookDeadlineMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "civicdesk.middleware.LazyMessageMiddleware",  # django.contrib.messages' own, built on first use
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "civicdesk.middleware.ContentSecurityPolicyMiddleware",
    # django-axes must be last: it inspects the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "civicdesk.urls"
WSGI_APPLICATION = "civicdesk.wsgi.application"
ASGI_APPLICATION = "civicdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "civicdesk" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "civicdesk.context_processors.office",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "civicdesk" / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / ".data" / "media")))
MEDIA_URL = "/media-not-public/"  # media are only served through authenticated, office-scoped views
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security defaults that hold everywhere ----------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # Django's default, stated: Twilio webhooks are small.

# --- Login lockout (django-axes) -----------------------------------------------------------------
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours: 15 minutes
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- REST framework ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}

# --- Twilio ---------------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
# Twilio's hosts are never configurable here: the REST client and the media downloader send the account's
# credentials to them. Only the test settings define TWILIO_API_BASE_URL (the local fake of Twilio's API);
# production and local settings refuse to start when the environment sets it (twilio_host_override_refuse).
SMS_BACKEND = env_str("SMS_BACKEND", "twilio")
# Retries of a send that Twilio did not accept (429, 5xx, no connection) wait between half and all of
# base * 2**n seconds before retry n + 1 (at most 5 minutes; messages.tasks.delivery_retry_countdown).
DELIVERY_RETRY_BACKOFF_BASE_SECONDS = env_float("DELIVERY_RETRY_BACKOFF_BASE_SECONDS", 2.0)
# MMS media and voicemail recordings Twilio answers 404 for (not ready yet) are retried soon, on a schedule
# scaled by this (messages.tasks.media_retry_countdown, voice.tasks.voicemail_download_retry_countdown).
DOWNLOAD_RETRY_BASE_SECONDS = env_float("DOWNLOAD_RETRY_BASE_SECONDS", 2.0)
# A closed conversation is reopened, instead of a new one started, when a text arrives within this window.
CONVERSATION_REOPEN_WINDOW_HOURS = env_int("CONVERSATION_REOPEN_WINDOW_HOURS", 72)
# A bulk close can be undone (its conversations reopened) for this long.
BULK_UNDO_SECONDS = env_int("BULK_UNDO_SECONDS", 600)
MEDIA_MAX_BYTES = env_int("MEDIA_MAX_BYTES", 5 * 1024 * 1024)

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}


# Parallel query workers PostgreSQL may start per query on the app's connections (web, worker, commands).
# 0: the app's queries are page-sized and gain nothing from them, and on a small server the workers compete
# with the web processes for the cores (docs/deployment.md, "PostgreSQL").
DATABASE_PARALLEL_WORKERS_PER_GATHER = env_int("DATABASE_PARALLEL_WORKERS_PER_GATHER", 0)
# The webhook hot paths run as server-side prepared statements (common/rawsql.py). Turn off behind a
# connection pooler that cannot keep them (PgBouncer before 1.21 in transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
# libpq's connect_timeout for every connection (libpq and psycopg treat less than 2 as 2): a worker or a
# command facing a server that does not answer gives up after this instead of psycopg's default 130 s.
DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)
# A Twilio webhook's waits for PostgreSQL (connecting, the health check, every statement) end this long
# after the request began; a database that does not answer in time is a 503 with Retry-After, which Twilio
# can retry, instead of a request held until Twilio's own 15 s timeout (civicdesk/postgres/base.py).
WEBHOOK_DATABASE_DEADLINE_SECONDS = env_float("WEBHOOK_DATABASE_DEADLINE_SECONDS", 0.8)
# The Retry-After of that 503, in seconds.
WEBHOOK_RETRY_AFTER_SECONDS = env_int("WEBHOOK_RETRY_AFTER_SECONDS", 5)


TWILIO_HOST_OVERRIDE_VARIABLE = "TWILIO_API_BASE_URL"


def twilio_host_override_refuse() -> None:
    """Refuse to start when the environment tries to point the Twilio client at another host.

    ``TWILIO_API_BASE_URL`` is a test hook: with it, every REST call and media download would carry the
    account's credentials to that host, and loopback addresses and redirects would be allowed for it.
    """
    if env_str(TWILIO_HOST_OVERRIDE_VARIABLE).strip():
        raise ImproperlyConfigured(
            f"{TWILIO_HOST_OVERRIDE_VARIABLE} is set in the environment. It points the Twilio client (and "
            "the account's credentials) at another host and exists only in the test settings; unset it."
        )


def database_settings(url: str) -> dict[str, Any]:
    """Django DATABASES['default'] from a URL, including unix-socket URLs (``?host=/socket/dir``).

    Sets ``max_parallel_workers_per_gather`` through libpq's ``options``, ahead of any ``options`` the URL
    gives, so an explicit ``-c max_parallel_workers_per_gather=…`` in the URL still wins; and libpq's
    ``connect_timeout`` unless the URL gives one. PostgreSQL runs on ``civicdesk.postgres``, Django's own
    backend plus the deadline webhooks put on their waits for the server."""
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = "civicdesk.postgres"
    query = parse_qs(urlsplit(url).query)
    if "host" in query:  # libpq-style socket directory, as the embedded PostgreSQL hands out
        config["HOST"] = query["host"][0]
    config.setdefault("OPTIONS", {})
    given = config["OPTIONS"].get("options", "")
    parallel = f"-c max_parallel_workers_per_gather={DATABASE_PARALLEL_WORKERS_PER_GATHER}"
    config["OPTIONS"]["options"] = f"{parallel} {given}".strip()
    config["OPTIONS"].setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT_SECONDS)
    return config


def celery_broker_url(redis_url: str) -> str:
    """Kombu spells a unix-socket Redis ``redis+socket://``; redis-py spells it ``unix://``."""
    if redis_url.startswith("unix://"):
        parts = urlsplit(redis_url)
        db = parse_qs(parts.query).get("db", ["0"])[0]
        return f"redis+socket://{parts.path}?virtual_host={db}"
    return redis_url


def redis_settings(redis_url: str, *, key_prefix: str = "civicdesk") -> dict[str, Any]:
    """Cache and Celery settings for one Redis URL."""
    return {
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": key_prefix,
                "TIMEOUT": 300,
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        },
        "CELERY_BROKER_URL": celery_broker_url(redis_url),
    }


# --- Celery (the values that do not depend on the broker URL) -------------------------------------
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False  # opted into per task, only where the task is idempotent
# An acks_late task's message that was started this many times without finishing (its worker process died
# under it each time) is not run again: it becomes a dead letter (common/deadletters.py). Its start count is
# kept this long after the last start, which must outlast the visibility timeout below.
CELERY_TASK_MAX_DELIVERIES = env_int("CELERY_TASK_MAX_DELIVERIES", 3)
CELERY_TASK_DELIVERY_COUNT_SECONDS = env_int("CELERY_TASK_DELIVERY_COUNT_SECONDS", 24 * 3600)
# Redis re-delivers an unacked message after this long; no task countdown may exceed it. The publish-side
# failover options make a web request give up on a dead broker in about a second instead of retrying for
# many: the row already records the work, and the sweeper re-enqueues it (messages.services.sweeper).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 1,
    "socket_connect_timeout": 0.5,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "civicdesk")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this is set, so each task
# paid for a new PostgreSQL backend (~20 ms of server CPU here; docs/performance.md, "SMS ingest"). With it,
# connections are kept, and civicdesk/celery.py applies CONN_MAX_AGE and CONN_HEALTH_CHECKS around each
# task exactly as Django does around each request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
SWEEPER_INTERVAL_SECONDS = env_int("SWEEPER_INTERVAL_SECONDS", 30)
SWEEPER_STALE_AFTER_SECONDS = env_int("SWEEPER_STALE_AFTER_SECONDS", 60)
# At most one inbound drain is published per this many seconds while one is pending
# (messages.services.inbound_queue); the drain itself takes everything pending when it runs.
INBOUND_NUDGE_SECONDS = env_int("INBOUND_NUDGE_SECONDS", 10)
# A web process that saw a drain on its way less than this long ago does not ask Redis again; every drain
# keeps reading at least this long (0 turns both off).
INBOUND_NUDGE_MEMO_SECONDS = env_float("INBOUND_NUDGE_MEMO_SECONDS", 0.5)
VOICE_NUDGE_SECONDS = env_int("VOICE_NUDGE_SECONDS", INBOUND_NUDGE_SECONDS)  # voicemail follow-ups
# Seconds each process keeps the number -> office routing of webhooks (0: read it every time).
OFFICE_NUMBER_CACHE_SECONDS = env_int("OFFICE_NUMBER_CACHE_SECONDS", 5)

# After a call to the cache's Redis fails (Redis down, or hung past socket_timeout), a process stops asking it
# for this many seconds: pages fall back to the database, and webhooks skip their nudge (the sweeper is the
# backstop), at once instead of each waiting for the timeout (common.caching).
CACHE_OUTAGE_SECONDS = env_float("CACHE_OUTAGE_SECONDS", 5.0)

HEALTHZ_TIMEOUT_SECONDS = 0.5
DEMO_MODE = env_bool("DEMO_MODE", False)

CELERY_BEAT_SCHEDULE = {
    "sweep-unfinished-work": {"task": "messages.tasks.sweep", "schedule": float(SWEEPER_INTERVAL_SECONDS)},
}

# --- Voice hotline (docs/configuration.md, "Voice") -------------------------------------------------
# Longest voicemail, unless an IVR menu sets its own. Twilio transcribes only recordings of 2-120 s.
VOICE_MAX_RECORDING_SECONDS = env_int("VOICE_MAX_RECORDING_SECONDS", 180)
# Recordings older than this many days are deleted here and at Twilio; transcripts stay. 0 keeps them.
VOICE_RECORDING_RETENTION_DAYS = env_int("VOICE_RECORDING_RETENTION_DAYS", 0)
VOICE_RECORDING_MAX_BYTES = env_int("VOICE_RECORDING_MAX_BYTES", 20 * 1024 * 1024)
# Where recordings are fetched from and deleted: twilio | simulator | locmem. Empty: follow SMS_BACKEND.
VOICE_BACKEND = env_str("VOICE_BACKEND")
# Ask Twilio to transcribe English voicemails (<Record transcribe>); others go to TRANSCRIPTION_BACKEND.
VOICE_TWILIO_TRANSCRIPTION = env_bool("VOICE_TWILIO_TRANSCRIPTION", True)
# Transcribes what Twilio does not: none | simulator | a dotted path to a class (voice/transcription.py).
TRANSCRIPTION_BACKEND = env_str("TRANSCRIPTION_BACKEND", "none")
# How long to wait for Twilio's transcription callback before giving up on it.
VOICE_TRANSCRIPT_WAIT_SECONDS = env_int("VOICE_TRANSCRIPT_WAIT_SECONDS", 30 * 60)
CELERY_BEAT_SCHEDULE["voice-sweep"] = {
    "task": "voice.tasks.voice_sweep",
    "schedule": float(SWEEPER_INTERVAL_SECONDS),
}
CELERY_BEAT_SCHEDULE["voice-recording-retention"] = {
    "task": "voice.tasks.voicemail_recordings_expire",
    "schedule": 3600.0,
}
# Seconds each process keeps an office's IVR menus, call-in campaign and hours (0: read them every time).
VOICE_CONFIG_CACHE_SECONDS = env_int("VOICE_CONFIG_CACHE_SECONDS", 5)

# --- Inbox --------------------------------------------------------------------------------------------
# How often snoozed conversations whose "snooze until" has passed are reopened (Celery beat).
SNOOZE_WAKE_INTERVAL_SECONDS = env_int("SNOOZE_WAKE_INTERVAL_SECONDS", 60)
CELERY_BEAT_SCHEDULE["snoozed-conversations-wake"] = {
    "task": "messages.tasks.snoozed_conversations_wake",
    "schedule": float(SNOOZE_WAKE_INTERVAL_SECONDS),
    # A tick left queued while no worker runs is dropped: the next one does the same work.
    "options": {"expires": float(SNOOZE_WAKE_INTERVAL_SECONDS)},
}
# How often open inbox and conversation pages poll for changes (messages.views.inbox.poll_seconds).
INBOX_POLL_SECONDS = env_int("INBOX_POLL_SECONDS", 15)

# --- Bulk replies (docs/configuration.md, "Bulk replies") ---------------------------------------------------
# Segments per second through a number that uses a Twilio Messaging Service (unless the number sets its own).
BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND = env_float("BULK_MESSAGING_SERVICE_SEGMENTS_PER_SECOND", 1.0)
# The cost estimate's price of one SMS segment, unless an office sets its own (US long code, 2026 list price).
BULK_SEGMENT_PRICE_USD = env_float("BULK_SEGMENT_PRICE_USD", 0.0083)
# Most conversations one bulk reply may name by id; larger audiences are a filter or a tag.
BULK_REPLY_MAX_SELECTED = env_int("BULK_REPLY_MAX_SELECTED", 10000)
# Senders per bulk reply: 1 + rate * this (a Twilio request's seconds), at most BULK_SEND_MAX_SLOTS.
BULK_SEND_SECONDS_PER_REQUEST = env_float("BULK_SEND_SECONDS_PER_REQUEST", 0.25)
BULK_SEND_MAX_SLOTS = env_int("BULK_SEND_MAX_SLOTS", 8)
# Tries of one recipient's text on 429s and 5xx before it fails with the last error (then the next goes on).
BULK_SEND_MAX_RETRIES = env_int("BULK_SEND_MAX_RETRIES", 6)
# How often scheduled bulk replies start and stalled senders are restarted (Celery beat).
BULK_TICK_SECONDS = env_int("BULK_TICK_SECONDS", 5)
CELERY_BEAT_SCHEDULE["bulk-replies-tick"] = {
    "task": "correspondence.tasks.bulk_replies_tick",
    "schedule": float(BULK_TICK_SECONDS),
    "options": {"expires": float(BULK_TICK_SECONDS)},
}
