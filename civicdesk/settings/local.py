"""Local development and the demo: embedded PostgreSQL and Redis unless URLs are given."""

from __future__ import annotations

from civicdesk import devstack
from civicdesk.env import env_str

from .base import *  # noqa: F403
from .base import database_settings, redis_settings, twilio_host_override_refuse

DEBUG = True
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-not-for-production")
ALLOWED_HOSTS = ["*"]
SMS_BACKEND = env_str("SMS_BACKEND", "simulator")
# The offline simulator signs its webhooks and callbacks with these, so the demo runs the real signed path.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "demo-auth-token")
# The demo talks to Twilio through the offline simulator, or to Twilio's real API (SMS_BACKEND=twilio):
# TWILIO_API_BASE_URL is a test hook, refused here as in production.
twilio_host_override_refuse()
DEMO_MODE = True
# Invitations and other email are printed by the runserver process instead of being sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

DATABASE_URL = env_str("DATABASE_URL") or devstack.ensure_postgres()
REDIS_URL = env_str("REDIS_URL") or devstack.ensure_redis()
DATABASES = {"default": database_settings(DATABASE_URL)}
_redis = redis_settings(REDIS_URL)
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]
