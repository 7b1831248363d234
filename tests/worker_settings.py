"""Settings for the real Celery worker processes that tests start (tests/workers.py).

The test settings, plus what such a worker needs to differ in, read from its environment (the harness sets
these; a worker started without them behaves like the test process):

- ``WORKER_SMS_BACKEND``: the SMS backend (``twilio`` to send through the real SDK to a fake Twilio);
- ``WORKER_TWILIO_API_BASE_URL``: where the twilio SDK sends its requests (the fake's address);
- ``WORKER_TWILIO_HTTP_TIMEOUT``: the SDK's connect and read timeout, in seconds;
- ``WORKER_VISIBILITY_TIMEOUT``: seconds after which Redis hands an unacknowledged task (its worker was
  killed) to another worker, checked every second by every worker.

The database (``DATABASE_URL``, naming the test database), Redis (``TEST_REDIS_URL``), the queue and the
cache key prefix (``PYTEST_XDIST_WORKER``, ``TEST_RUN_SUFFIX``) come through the test settings.
"""

from __future__ import annotations

from civicdesk.env import env_float, env_str
from civicdesk.settings.test import *  # noqa: F403
from civicdesk.settings.test import CELERY_BROKER_TRANSPORT_OPTIONS

# Keep each worker's connection between tasks, as deployed (the test settings close it after every task).
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
SMS_BACKEND = env_str("WORKER_SMS_BACKEND", "locmem")
TWILIO_API_BASE_URL = env_str("WORKER_TWILIO_API_BASE_URL")
TWILIO_HTTP_TIMEOUT = env_float("WORKER_TWILIO_HTTP_TIMEOUT", 10.0)

_visibility_timeout = env_float("WORKER_VISIBILITY_TIMEOUT", 0.0)
if _visibility_timeout > 0:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": _visibility_timeout,
        # Look for abandoned tasks every second, and really scan Redis each time (kombu's defaults: every
        # 10 s, scanning on every 10th look).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

# The worker's own lines (ready, task received/succeeded) and any error, on stderr, which the harness keeps.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"celery": {"level": "INFO"}, "twilio": {"level": "WARNING"}},
}
