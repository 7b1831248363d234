"""The Celery app. Tasks take ids, re-check the office, and call one service."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicdesk.settings.local")

# Every task is a DeadLetteringTask: an acks_late task's message is requeued when its worker is lost, and
# dead-lettered after CELERY_TASK_MAX_DELIVERIES starts instead of killing workers for ever
# (common/deadletters.py).
app = Celery("civicdesk", task_cls="common.deadletters:DeadLetteringTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**_kwargs: Any) -> None:
    """Drop connections past CONN_MAX_AGE or broken (a PostgreSQL restart), as Django does per request.

    With CELERY_DB_REUSE_MAX set, Celery keeps the worker's connection between tasks; this keeps the
    database settings in charge of how long, instead of a task count alone.
    """
    from django.db import close_old_connections

    close_old_connections()
