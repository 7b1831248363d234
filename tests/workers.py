"""Real Celery worker processes for tests: ``celery -A civicdesk worker`` subprocesses on the test's engines.

Each worker is its own OS process (solo pool by default, so its pid is the process that runs the task and a
``kill(SIGKILL)`` kills the task mid-way), consuming the test process's queue on the same Redis, with the
same cache key prefix, and connected to the pytest-django *test* database. A test that uses them must commit
what the workers are to see: ``pytest.mark.django_db(transaction=True)``.

Usage::

    with FakeTwilio(accounts={settings.TWILIO_ACCOUNT_SID: settings.TWILIO_AUTH_TOKEN}) as fake:
        with celery_workers(2, twilio_base_url=fake.base_url) as workers:
            tasks.message_deliver.delay(message.pk)   # published by the test, run by a worker
            ...
            victim = workers.which_received(task_id)  # the worker that took that task
            victim.kill(signal.SIGKILL)
            victim.restart()

``celery_workers`` returns once every worker answers a ping. On exit it stops them (SIGTERM, then SIGKILL)
and fails the test, with the end of the worker's log, if one died without the test killing it. A module-scoped
fixture may hold the workers across tests: they keep no state between tasks, and transactional tests only
truncate the tables they read. With ``twilio_base_url`` the workers send through the real twilio SDK to that
address (a :class:`tests.fakes.fake_twilio.FakeTwilio` in the test process); without it, to the locmem
backend, whose outbox lives in the worker and cannot be seen from the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from civicdesk import devstack
from civicdesk.celery import app as celery_app

REPO = Path(__file__).resolve().parent.parent
WORKER_SETTINGS = "tests.worker_settings"
READY_TIMEOUT = 30.0  # two workers starting at once on a loaded two-core machine take 3-6 s
STOP_TIMEOUT = 10.0


def worker_database_url() -> str:
    """A DATABASE_URL naming the database this test process is connected to (the test database, once
    pytest-django has set it up), over the same socket or host."""
    conf = connection.settings_dict
    user = quote(str(conf.get("USER") or ""), safe="")
    password = quote(str(conf.get("PASSWORD") or ""), safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    name = quote(str(conf["NAME"]), safe="")
    host = str(conf.get("HOST") or "")
    port = str(conf.get("PORT") or "")
    if host.startswith("/"):  # a unix socket directory
        query = f"host={quote(host, safe='/')}" + (f"&port={port}" if port else "")
        return f"postgresql://{credentials}/{name}?{query}"
    return f"postgresql://{credentials}{host or 'localhost'}{f':{port}' if port else ''}/{name}"


@dataclass
class WorkerProcess:
    """One ``celery worker`` subprocess. ``name`` is its Celery node name; ``log`` its stdout and stderr."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)
    killed: bool = field(default=False, init=False)  # by the test, on purpose

    def __post_init__(self) -> None:
        self._spawn()

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=devstack._child_preexec(),  # noqa: PLW1509 - dies with the test process
            )
        self.killed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker process and wait until it has exited."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        self.process.wait(timeout=STOP_TIMEOUT)

    def restart(self, *, timeout: float = READY_TIMEOUT, wait: bool = True) -> None:
        """Start the worker again (same node name, same log) after it was killed; waits until it answers.

        ``wait=False`` returns at once: for a worker that will be busy (so deaf to pings) as it starts."""
        assert not self.alive(), f"{self.name} is still running"
        self._spawn()
        if wait:
            _wait_ready([self], timeout)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it is still there after STOP_TIMEOUT."""
        self.terminate()
        self._wait_stopped()

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM) without waiting for it."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def _wait_stopped(self) -> None:
        if not self.alive():
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def times_received(self, task_id: str) -> int:
        """How many times this worker's log (across restarts) says it took the task with this id."""
        return self.log().count(f"[{task_id}] received")

    def received(self, task_id: str) -> bool:
        """Whether this worker's log says it took the task with this id."""
        return self.times_received(task_id) > 0


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def queue_length(queue: str | None = None) -> int:
    """Tasks waiting in the broker for ``queue`` (default: this test process's queue), none taken yet."""
    with celery_app.connection_for_read() as conn:
        # Not passive: kombu's Redis transport knows only the queues this process declared (a no-op in Redis).
        channel: Any = conn.default_channel  # typed as kombu's abstract StdChannel, without queue_declare
        declared = channel.queue_declare(
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE, durable=True, auto_delete=False
        )
        return int(declared.message_count)


class Workers(list[WorkerProcess]):
    """The workers one :func:`celery_workers` started, in order."""

    def wait_idle(self, *, timeout: float = 15.0) -> None:
        """Until the queue is empty and every live worker has finished the task it had.

        A solo worker answers a ping only between tasks, so a reply after the queue was seen empty means
        that worker has finished whatever it had taken. (Tasks with a countdown are not waited for.)
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if queue_length() == 0:
                live = [worker.name for worker in self if worker.alive()]
                remaining = max(deadline - time.monotonic(), 0.1)
                replies = celery_app.control.ping(destination=live, timeout=remaining, limit=len(live)) or []
                answered = {name for reply in replies for name in reply}
                if answered >= set(live) and queue_length() == 0:
                    return
            time.sleep(0.02)
        pytest.fail(f"workers still busy after {timeout}s ({queue_length()} queued)\n{_logs(self)}")

    def which_received(self, task_id: str, *, timeout: float = 10.0) -> WorkerProcess:
        """The worker that took the task with this id (from the worker's own log line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self:
                if worker.received(task_id):
                    return worker
            time.sleep(0.02)
        pytest.fail(f"no worker received task {task_id} within {timeout}s\n{_logs(self)}")


@contextlib.contextmanager
def celery_workers(
    count: int = 2,
    *,
    twilio_base_url: str = "",
    twilio_http_timeout: float = 10.0,
    visibility_timeout: float | None = None,
    pool: str = "solo",
    concurrency: int = 1,
    include: tuple[str, ...] = (),
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[Workers]:
    """Start ``count`` worker processes on this test process's queue, Redis and test database.

    ``visibility_timeout``: seconds after which a task taken by a worker that died unacknowledged goes to
    another worker (default: the settings' hour). Call it only once pytest-django has set up the test
    database (inside a ``django_db`` test, or a fixture that requests ``django_db_setup``). ``include``: more
    modules the workers import for their tasks (``--include``), e.g. tasks that exist only in tests.
    """
    folder = Path(tempfile.mkdtemp(prefix="cd-workers-"))
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
        "DATABASE_URL": worker_database_url(),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "WORKER_SMS_BACKEND": "twilio" if twilio_base_url else "locmem",
        "WORKER_TWILIO_API_BASE_URL": twilio_base_url,
        "WORKER_TWILIO_HTTP_TIMEOUT": str(twilio_http_timeout),
        "WORKER_VISIBILITY_TIMEOUT": str(visibility_timeout or 0),
        "PYTHONUNBUFFERED": "1",
    }
    workers = Workers()
    for index in range(count):
        name = f"w{index}-{run}@civicdesk-test"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "civicdesk",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "-n",
            name,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        if include:
            argv += ["--include", ",".join(include)]
        workers.append(WorkerProcess(name=name, argv=argv, env=env, log_path=folder / f"w{index}.log"))
    try:
        _wait_ready(workers, ready_timeout)
        yield workers
    finally:
        crashed = [w for w in workers if not w.alive() and not w.killed]
        for worker in workers:  # all at once: each warm shutdown takes about a second
            worker.terminate()
        for worker in workers:
            worker._wait_stopped()
        report = _logs(crashed) if crashed else ""
        shutil.rmtree(folder, ignore_errors=True)
        if crashed:
            pytest.fail(f"worker process(es) died during the test:\n{report}")


def _wait_ready(workers: list[WorkerProcess], timeout: float) -> None:
    """Until every worker answers a broadcast ping over the test's broker (or one exits, or time runs out)."""
    waiting = {worker.name: worker for worker in workers}
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        dead = [worker for worker in waiting.values() if not worker.alive()]
        if dead:
            pytest.fail(f"worker process(es) exited while starting:\n{_logs(dead)}")
        replies = celery_app.control.ping(destination=list(waiting), timeout=0.25) or []
        for reply in replies:
            for name in reply:
                waiting.pop(name, None)
    if waiting:
        for worker in waiting.values():
            worker.stop()
        pytest.fail(f"worker(s) not ready after {timeout}s:\n{_logs(list(waiting.values()))}")


def _logs(workers: list[WorkerProcess], lines: int = 40) -> str:
    parts = []
    for worker in workers:
        tail = "\n".join(worker.log().splitlines()[-lines:])
        parts.append(f"--- {worker.name} (pid {worker.pid}, exit {worker.process.returncode}) ---\n{tail}")
    return "\n".join(parts)
