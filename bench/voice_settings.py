"""Settings for the voice benchmark (bench/voice_calls.py): production-like, services from environment URLs.

Its own database (``civicdesk_bench_voice``) and Redis database (5), so a run never touches the demo's, the
tests' or another benchmark's data. ``ROOT_URLCONF`` adds the bare baseline view (bench/voice_urls.py).
"""

from __future__ import annotations

from pathlib import Path

from civicdesk.env import env_int, env_str
from civicdesk.settings.base import *  # noqa: F403
from civicdesk.settings.base import database_settings, redis_settings

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY", "bench-only-insecure-key")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.voice_urls"

# The load generator signs for exactly this origin; the signature check rebuilds the URL from it.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8766").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "AC" + "b" * 32)
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "bench-auth-token")
SMS_BACKEND = "locmem"
# Recordings are "downloaded" from the simulator and never transcribed by a backend: the benchmark measures
# the webhooks, and a worker (if started with --worker) does the offline follow-up.
VOICE_BACKEND = "simulator"
TRANSCRIPTION_BACKEND = "none"

DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/civicdesk_bench_voice")
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/5")
DATABASES = {"default": database_settings(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("BENCH_CONN_MAX_AGE", 600)
_redis = redis_settings(REDIS_URL, key_prefix="civicdesk-bench-voice")
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_DEFAULT_QUEUE", "civicdesk-bench-voice")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", "/tmp/civicdesk-bench-voice-media"))  # noqa: S108

# Warnings and errors only: a log line per request would be part of what we measure.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
