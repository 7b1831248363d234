"""Helpers shared by the benchmarks: processes, CPU accounting, percentiles, an open-loop HTTP load generator.

Nothing here imports Django settings at import time, so a load-generator process stays light.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- statistics ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def latency_summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies given in seconds, in milliseconds rounded to 0.1 ms."""
    return {
        name: round(percentile(seconds, q) * 1000, 1)
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    }


# --- processes --------------------------------------------------------------------------------------------


@dataclass
class Service:
    """A process the benchmark started (its own session, so the whole group can be signalled)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def pids(self) -> list[int]:
        """The process and its descendants (gunicorn workers, Celery's pool child)."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def start_service(name: str, argv: Sequence[str], *, env: dict[str, str], log_dir: Path) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name, proc, log_path)


def descendants(pid: int) -> list[int]:
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children.extend(int(child) for child in text)
    except (FileNotFoundError, ProcessLookupError):
        return []
    result = list(children)
    for child in children:
        result.extend(descendants(child))
    return result


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pids: Iterable[int]) -> float:
    """User+system CPU time consumed so far by these processes (exited ones count as zero)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process tree, including children that have exited since: a reaped child's time is
    in its parent's cutime/cstime. Differences between two readings are exact even when children come and
    go (PostgreSQL backends, which are forked per connection and reaped by the postmaster)."""
    total = 0
    for pid in [root, *descendants(root)]:
        fields = _stat(pid)
        if fields is not None:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / CLK_TCK


def database_backends_cpu(postmaster: int, database: str) -> dict[int, float]:
    """CPU seconds of each live PostgreSQL backend connected to ``database`` (found by its process title,
    ``postgres: ... <user> <database> <client> <state>``)."""
    result = {}
    for pid in descendants(postmaster):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if f" {database} " in title:
            result[pid] = cpu_seconds([pid])
    return result


def parent_pid(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else 0


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already included in user/nice
    return (total - idle) / CLK_TCK, total / CLK_TCK


def wait_for_http(url: str, *, timeout: float = 30.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback URL we built
                if response.status < 500:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s: {last}")


def software_versions() -> dict[str, str]:
    import django

    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
    }


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


# --- open-loop load generation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One POST, prepared (signed, encoded) before the clock starts. ``at`` is seconds after the start."""

    at: float
    path: str
    body: bytes
    headers: dict[str, str]
    tag: str = ""


@dataclass
class Outcome:
    tag: str
    intended: float  # wall-clock time the request was due (open loop: latency is measured from here)
    sent: float  # wall-clock time it was handed to the client
    done: float
    status: int  # HTTP status; 0 for a client error or timeout
    error: str = ""


@dataclass
class LoadResult:
    started: float
    finished: float
    outcomes: list[Outcome] = field(default_factory=list)
    max_lag: float = 0.0  # how far behind schedule the generator ever was when launching a request

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "finished": self.finished,
            "max_lag": self.max_lag,
            "outcomes": [[o.tag, o.intended, o.sent, o.done, o.status, o.error] for o in self.outcomes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        outcomes = [Outcome(*row) for row in data["outcomes"]]
        return cls(data["started"], data["finished"], outcomes, data["max_lag"])


async def open_loop(
    base_url: str,
    requests: Sequence[PreparedRequest],
    *,
    connections: int,
    timeout: float,
    deadline: float,
) -> LoadResult:
    """Fire ``requests`` at their scheduled times whatever the server's pace (open loop), over keep-alive
    connections (at most ``connections``). A request still waiting for a free connection is still late:
    latency counts from the scheduled time, so a slow server cannot hide queueing (coordinated omission).
    Stops by itself: nothing is launched after ``deadline`` seconds and stragglers time out.
    """
    from bench.httpclient import HttpError, HttpPool

    pool = HttpPool(base_url, limit=connections, timeout=timeout)
    # Encoded before the clock starts: the generator's work per request is then a write and a read.
    encoded = [pool.encode("POST", request.path, request.body, request.headers) for request in requests]
    result = LoadResult(started=time.time(), finished=0.0)
    loop = asyncio.get_running_loop()

    async def fire(request: PreparedRequest, data: bytes, intended: float) -> None:
        sent = time.time()
        try:
            status, _ = await pool.send(data)
            error = ""
        except (TimeoutError, HttpError, OSError) as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"[:200]
        result.outcomes.append(Outcome(request.tag, intended, sent, time.time(), status, error))

    tasks: set[asyncio.Task[None]] = set()
    wall0, mono0 = time.time(), loop.time()
    for request, data in zip(requests, encoded, strict=True):
        if request.at > deadline:
            break
        delay = mono0 + request.at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.max_lag = max(result.max_lag, -delay)
        task = asyncio.create_task(fire(request, data, wall0 + request.at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    pool.close()
    result.finished = time.time()
    return result


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def print_in_scratch_database(
    measure: Callable[[], dict[str, Any]], *, server: str, database: str, redis_url: str
) -> int:
    """Run an in-process benchmark against a scratch database on ``server``: created, then ``measure()``
    (which sets Django up with ``bench.settings`` and migrates), its figures printed as JSON, and the
    database dropped whatever happens. Returns the exit status."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATABASE_URL"] = f"{server}/{database}"
    os.environ["REDIS_URL"] = redis_url
    try:
        print(json.dumps(measure(), indent=2))
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
    return 0
