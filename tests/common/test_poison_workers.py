"""Poison tasks on a real prefork worker subprocess: its pool process is SIGKILLed under the task.

The worker (``celery worker --pool prefork --concurrency 1``) imports the test-only tasks of
``tests.common.poison_tasks``; each of them appends a line per start to a file, which survives the kill.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from civicdesk.celery import app as celery_app
from common.models import DeadLetter
from tests.common import poison_tasks
from tests.workers import Workers, celery_workers

# The worker process writes dead letters; the tests read them. Flushing only that app's table afterwards
# (not every table) keeps the tests fast.
pytestmark = pytest.mark.django_db(transaction=True, available_apps=["common"])

# A poison task's starts take well under a second each (the child is forked again at once); this bounds the
# wait for its dead letter, so a guard that never trips fails the test instead of hanging it.
DEAD_LETTER_WAIT_SECONDS = 10.0


TASKS = "tests.common.poison_tasks"
QUICK_PREFORK = f"{TASKS}:QuickReapingTaskPool"


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def starts(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def prefork_worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Workers]:
    celery_app.control.purge()  # what an earlier run left in this queue
    with pytest.MonkeyPatch.context() as env, django_db_blocker.unblock():
        env.setenv("CELERY_CUSTOM_WORKER_POOL", QUICK_PREFORK)  # what `--pool custom` runs
        with celery_workers(1, pool="custom", concurrency=1, include=(TASKS,)) as workers:
            yield workers
            for worker in workers:  # no warm shutdown needed (it takes seconds): the worker and its pool
                worker.killed = True
                os.killpg(worker.pid, signal.SIGKILL)  # its own session, so the group is it and its pool
                worker.process.wait(timeout=10)


def test_task_killing_its_worker_every_time_runs_max_times_then_is_dead_lettered_and_the_worker_goes_on(
    prefork_worker: Workers, tmp_path: Path
) -> None:
    limit = settings.CELERY_TASK_MAX_DELIVERIES
    poison = tmp_path / "poison"
    result = poison_tasks.kill_own_process.apply_async(args=(str(poison),))
    dead = wait_for(lambda: DeadLetter.objects.filter(task_id=result.id).exists(), DEAD_LETTER_WAIT_SECONDS)
    assert dead, (
        f"no dead letter after {DEAD_LETTER_WAIT_SECONDS}s; the task started {starts(poison)} times\n"
        + poison.read_text()
        + prefork_worker[0].log()
    )
    assert starts(poison) == limit, "the body runs CELERY_TASK_MAX_DELIVERIES times, then never again"
    letter = DeadLetter.objects.get(task_id=result.id)
    assert letter.task_name == "tests.poison.kill_own_process"
    assert (letter.args, letter.kwargs, letter.retries) == ([str(poison)], {}, 0)
    assert letter.deliveries == limit + 1  # the limit's starts, and the one that was not run
    assert "WorkerLostError" in letter.last_error
    assert "SIGKILL" in letter.last_error

    # The worker serves other tasks afterwards, and the poison message is gone from the queue.
    after = tmp_path / "after"
    poison_tasks.record_start.apply_async(args=(str(after),))
    assert wait_for(lambda: starts(after) == 1, 10)
    time.sleep(0.3)
    assert starts(poison) == limit
    assert prefork_worker[0].alive()


def test_task_whose_worker_dies_once_is_delivered_again_and_completes(
    prefork_worker: Workers, tmp_path: Path
) -> None:
    path = tmp_path / "once"
    poison_tasks.kill_own_process_once.apply_async(args=(str(path),))
    done = Path(str(path) + ".done")
    assert wait_for(done.exists, 10), (
        f"not completed; started {starts(path)} time(s): the message was dropped"
    )
    assert starts(path) == 2
    assert not DeadLetter.objects.exists()
