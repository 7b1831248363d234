"""Production: every secret and service URL must come from the environment; nothing is embedded."""

from __future__ import annotations

from pathlib import Path

from civicdesk.env import env_bool, env_int, env_list, env_required, env_str

from .base import *  # noqa: F403
from .base import database_settings, redis_settings, twilio_host_override_refuse

DEBUG = False
SECRET_KEY = env_required("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    ALLOWED_HOSTS = [env_required("ALLOWED_HOSTS")]
PUBLIC_BASE_URL = env_required("PUBLIC_BASE_URL").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])
TWILIO_ACCOUNT_SID = env_required("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_required("TWILIO_AUTH_TOKEN")
twilio_host_override_refuse()  # Twilio's real API only: TWILIO_API_BASE_URL is a test hook

DATABASES = {"default": database_settings(env_required("DATABASE_URL"))}
REDIS_URL = env_required("REDIS_URL")
_redis = redis_settings(REDIS_URL)
CACHES = _redis["CACHES"]
CELERY_BROKER_URL = _redis["CELERY_BROKER_URL"]

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (documented in docs/deployment.md).
if env_bool("TRUST_X_FORWARDED_PROTO", True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Twilio calls webhooks over plain POSTs; the health probe comes from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", "/var/lib/civicdesk/media"))
