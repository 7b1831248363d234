"""Tasks that exist only in tests: one that kills its own worker process every time (poison), one that kills
it on its first start only, and a plain one. Each appends a line to a file per start, so a test can count
starts across processes (a killed process leaves what it wrote in the file).

A worker subprocess loads them with ``--include tests.common.poison_tasks``, and may run them in
:class:`QuickReapingTaskPool`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from celery.concurrency.asynpool import AsynPool
from celery.concurrency.prefork import TaskPool

from civicdesk.celery import app

REAP_INTERVAL_SECONDS = 0.1


def _start(path: str) -> int:
    """Record one start; return how many starts the file holds now."""
    with Path(path).open("a") as file:
        file.write(f"{os.getpid()} {time.time():.3f}\n")
    return len(Path(path).read_text().splitlines())


@app.task(acks_late=True, ignore_result=True, name="tests.poison.kill_own_process")
def kill_own_process(path: str) -> None:
    _start(path)
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(acks_late=True, ignore_result=True, name="tests.poison.kill_own_process_once")
def kill_own_process_once(path: str) -> None:
    if _start(path) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    Path(path + ".done").write_text("done")


@app.task(acks_late=True, ignore_result=True, name="tests.poison.record_start")
def record_start(path: str) -> None:
    _start(path)


class _QuickReapingAsynPool(AsynPool):
    @property
    def timers(self) -> dict[Any, float]:
        return {self.maintain_pool: REAP_INTERVAL_SECONDS}


class QuickReapingTaskPool(TaskPool):
    """Celery's prefork pool, looking for exited pool processes every REAP_INTERVAL_SECONDS instead of 5 s.

    A pool process's exit wakes the pool at once through its sentinel, but that can happen before the kernel
    lets it be reaped; the pool then finds it on its next timed look, up to 5 s later. Same behaviour, sooner:
    ``celery worker --pool tests.common.poison_tasks:QuickReapingTaskPool``.
    """

    Pool = _QuickReapingAsynPool
