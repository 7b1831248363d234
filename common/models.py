"""The plumbing floor's one model: a task message that was not run again because it kept killing workers."""

from __future__ import annotations

from django.db import models

TASK_NAME_MAX_LENGTH = 200
TASK_ID_MAX_LENGTH = 255


class DeadLetter(models.Model):
    """A Celery task message that started more than ``CELERY_TASK_MAX_DELIVERIES`` times without finishing.

    Each start is counted before the task body runs (``common.deadletters``); a start that never finished is
    one whose worker process died under it (killed for memory, a crash, SIGKILL) and whose message the broker
    delivered again. Past the limit the body is not run: this row is written and the message acknowledged.
    One row per message and retry (``self.retry`` publishes the same task id with ``retries`` + 1).
    """

    task_name = models.CharField(max_length=TASK_NAME_MAX_LENGTH)
    task_id = models.CharField(max_length=TASK_ID_MAX_LENGTH)
    retries = models.PositiveIntegerField(default=0, help_text="Which retry of the task this message was.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    deliveries = models.PositiveIntegerField(
        help_text="Times the message was started, counting the last one, which was not run."
    )
    first_seen_at = models.DateTimeField(help_text="When the message was first started.")
    last_seen_at = models.DateTimeField(help_text="When it was last delivered, and not run.")
    last_error = models.TextField(blank=True, help_text="How its worker was last lost, when the worker knew.")

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["task_id", "retries"], name="common_deadletter_one_per_message")
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}]"
