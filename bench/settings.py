"""Settings for benchmarks: production-like (DEBUG off, base middleware), services from environment URLs.

Not based on ``civicdesk.settings.local``, which starts embedded engines. The benchmark harness points these
at the machine's PostgreSQL and Redis with a dedicated database name and Redis database number, so a run
never touches the demo's or the tests' data. ``ROOT_URLCONF`` adds the bare baseline view (bench/urls.py).
"""

from __future__ import annotations

from civicdesk.env import env_str
from civicdesk.settings.base import *  # noqa: F403
from civicdesk.settings.base import database_settings, redis_settings

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY", "bench-only-insecure-key")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.urls"

# The load generator signs for exactly this origin; the signature check rebuilds the URL from it.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8765").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "AC" + "b" * 32)
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "bench-auth-token")
# Nothing in the ingest path sends (the bench office has no auto-reply); if something did, it stays in memory.
SMS_BACKEND = "locmem"

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/civicdesk_bench_sms")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/6")
DATABASES = {"default": database_settings(DATABASE_URL)}
_redis = redis_settings(REDIS_URL, key_prefix="civicdesk-bench")
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "civicdesk-bench-sms")

# Warnings and errors only: a log line per request would be part of what we measure.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
