"""Tests: the same real engines as local (embedded unless URLs are given), isolated by name."""

from __future__ import annotations

import os

from civicdesk import devstack
from civicdesk.env import env_str

from .base import *  # noqa: F403
from .base import database_settings, redis_settings

DEBUG = False
SECRET_KEY = "test-only-key"  # noqa: S105
ALLOWED_HOSTS = ["*"]
SMS_BACKEND = "locmem"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # django.core.mail.outbox
PUBLIC_BASE_URL = "https://civicdesk.test"
TWILIO_ACCOUNT_SID = "AC" + "0" * 32
TWILIO_AUTH_TOKEN = "test-auth-token"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests create many users

DATABASE_URL = env_str("DATABASE_URL") or devstack.ensure_postgres()
# Redis database 1, so a running demo (database 0) never consumes the tests' tasks.
REDIS_URL = env_str("TEST_REDIS_URL") or devstack.redis_url_with_db(
    env_str("REDIS_URL") or devstack.ensure_redis(), 1
)
DATABASES = {"default": database_settings(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Lets several test runs share one server without dropping each other's database (pytest-xdist adds its own
# per-worker suffix on top of this).
TEST_RUN_SUFFIX = env_str("TEST_RUN_SUFFIX")
DATABASES["default"]["TEST"] = {"NAME": f"test_civicdesk{TEST_RUN_SUFFIX}"}
# Per run and per pytest-xdist worker, like the databases: cache keys (rail counts, the inbound nudge) are
# not shared between test processes.
_redis = redis_settings(
    REDIS_URL, key_prefix=f"civicdesk-test{TEST_RUN_SUFFIX}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
)
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]
# Per pytest-xdist worker too: a test's real Celery worker must never take another test process's tasks.
CELERY_TASK_DEFAULT_QUEUE = f"civicdesk-test{TEST_RUN_SUFFIX}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
MEDIA_ROOT = BASE_DIR / ".data" / "test-media"  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
AXES_FAILURE_LIMIT = 5
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
STATIC_ROOT = None  # type: ignore[assignment]  # tests serve static files through the finders
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
OFFICE_NUMBER_CACHE_SECONDS = 0  # tests re-point numbers between offices; the cache has its own test
INBOUND_NUDGE_MEMO_SECONDS = 0.0  # every drain would linger; the memo and the lingering have their own tests
NUDGE_FAILURE_BACKOFF_SECONDS = 0.0  # a test that takes Redis away must not hold off the next test's nudges
