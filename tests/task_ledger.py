"""A real Celery worker for a test, and a ledger of what it published and ran.

The worker is Celery's in-process test worker (``celery.contrib.testing.worker.start_worker``, solo pool)
consuming the tests' own queue on the real Redis, so the task wrappers run as in production: ``self.retry``
publishes a new message with an ETA, the worker holds it until then, and Celery enforces ``max_retries``.

:class:`TaskLedger` records every publish (with the countdown it carried, read from its ETA header as it
leaves) and every finished run, through Celery's ``before_task_publish`` and ``task_postrun`` signals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery.contrib.testing.worker import start_worker
from celery.signals import before_task_publish, task_postrun
from django.core.cache import cache

from civicdesk.celery import app as celery_app
from messages.services.inbound_queue import NUDGE_KEY as INBOUND_NUDGE_KEY
from voice.services.followups import NUDGE_KEY as VOICE_NUDGE_KEY

POLL_SECONDS = 0.02


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(POLL_SECONDS)
    return predicate()


@dataclass(frozen=True)
class Published:
    task: str  # the task's short name, e.g. "message_deliver"
    retries: int
    countdown: float | None  # seconds from publishing to its ETA; None without an ETA


class TaskLedger:
    """What was published and what finished, while connected (use as a context manager)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: list[Published] = []
        self.finished: list[tuple[str, str]] = []  # (task short name, state)

    def _on_publish(self, sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
        now = datetime.now(UTC)
        headers = headers or {}
        eta = headers.get("eta")
        countdown = (datetime.fromisoformat(eta) - now).total_seconds() if eta else None
        name = str(sender or headers.get("task", "")).rsplit(".", 1)[-1]
        with self._lock:
            self.published.append(Published(name, int(headers.get("retries") or 0), countdown))

    def _on_postrun(self, sender: Any = None, state: str | None = None, **_: Any) -> None:
        with self._lock:
            self.finished.append((str(getattr(sender, "name", "")).rsplit(".", 1)[-1], str(state)))

    def __enter__(self) -> TaskLedger:
        before_task_publish.connect(self._on_publish, weak=False)
        task_postrun.connect(self._on_postrun, weak=False)
        return self

    def __exit__(self, *exc: object) -> None:
        before_task_publish.disconnect(self._on_publish)
        task_postrun.disconnect(self._on_postrun)

    def idle(self) -> bool:
        """Every task published so far has run to the end (a retry is published before its run ends)."""
        with self._lock:
            return len(self.finished) >= len(self.published)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the work published so far (and all it published in turn) has run to the end."""
        assert self.published, "nothing was published"
        assert wait_for(self.idle, timeout), f"tasks still running: {self.published} / {self.finished}"

    def retry_countdowns(self, task: str) -> list[float]:
        """The countdowns of ``task``'s retries, in the order they were published."""
        with self._lock:
            return [
                p.countdown
                for p in self.published
                if p.task == task and p.retries and p.countdown is not None
            ]

    def runs(self, task: str) -> list[str]:
        """The end states of ``task``'s runs (``SUCCESS``, ``RETRY``, ``FAILURE``), in order."""
        with self._lock:
            return [state for name, state in self.finished if name == task]


@contextmanager
def running_worker() -> Iterator[None]:
    """A real worker on the tests' queue. Starting and stopping one takes seconds: share it in a module
    (a module-scoped fixture), and take a :func:`fresh_ledger` in each test."""
    celery_app.control.purge()  # drop tasks other tests left for ids that no longer exist
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="ERROR"
    ):
        yield


@contextmanager
def fresh_ledger() -> Iterator[TaskLedger]:
    """An empty queue and nudge keys, and a ledger connected before this test publishes anything."""
    celery_app.control.purge()
    cache.delete(INBOUND_NUDGE_KEY)  # a purged drain's nudge would hold off the next one for seconds
    cache.delete(VOICE_NUDGE_KEY)
    with TaskLedger() as ledger:
        yield ledger
