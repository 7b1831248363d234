"""Settings for the bulk-reply benchmark (bench/bulk_reply.py): production-like, services from env URLs.

Its own database (``civicdesk_bench_bulk``) and Redis database (10), so a run never touches the demo's, the
tests' or another benchmark's data. Texts go through the real twilio SDK to the benchmark's local fake of
Twilio's API (``BENCH_TWILIO_API_BASE_URL``, set by the harness to the fake's loopback address).
"""

from __future__ import annotations

from civicdesk.env import env_int, env_str
from civicdesk.settings.base import *  # noqa: F403
from civicdesk.settings.base import database_settings, redis_settings

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY", "bench-only-insecure-key")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8767").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "AC" + "c" * 32)
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "bench-auth-token")
SMS_BACKEND = "twilio"
# The fake's address: a loopback URL the harness chose, never Twilio's real API.
TWILIO_API_BASE_URL = env_str("BENCH_TWILIO_API_BASE_URL")
TWILIO_HTTP_TIMEOUT = (3.0, 10.0)

DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/civicdesk_bench_bulk")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/10")
DATABASES = {"default": database_settings(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("BENCH_CONN_MAX_AGE", 600)
_redis = redis_settings(REDIS_URL, key_prefix="civicdesk-bench-bulk")
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "civicdesk-bench-bulk")

# Warnings and errors only: a log line per task would be part of what we measure.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
