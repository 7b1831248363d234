"""Bulk-reply benchmark: start, prepare and send one bulk reply with real Celery workers and a fake Twilio.

Command (results go to docs/performance.md, "Bulk replies")::

    .venv/bin/python -m bench.bulk_reply --recipients 10000            # send everything, 3 worker SIGKILLs
    .venv/bin/python -m bench.bulk_reply --recipients 100000 --prepare-only   # preparation time and memory

One run, on loopback only:

1. (Re)creates the database ``civicdesk_bench_bulk`` on the machine's PostgreSQL (``--database-url``),
   migrates it and seeds, with ``bulk_create`` in batches: one office, one long-code number paced at
   ``--send-rate`` segments/s (``OfficePhoneNumber.send_rate``), an approved one-segment form letter, and
   ``--recipients`` constituents with ZIPs in seven time zones, each with a conversation, one inbound text
   and one tag. The office's quiet hours are set to start and end at the same time, which means none: the
   texts would otherwise be held for the recipients' nights. Redis database 10 is flushed before and after.
2. Starts a fake Twilio (tests/fakes/fake_twilio.py, in this process) that answers 1 % of message creates
   with 429 (code 20429) and 0.5 % with 21610 (opted out), at random, and records each create's time.
3. Starts ``--workers`` real ``celery worker`` processes (solo pool, so a SIGKILL kills the running task)
   and ``celery beat`` (the bulk tick every BULK_TICK_SECONDS, the delivery sweeper).
4. Times the start: ``correspondence.services.bulk.bulk_reply_create(..., start=True)`` in this process,
   which counts the audience and publishes the preparation task on commit. (The JSON API for bulk replies,
   ``POST /api/v1/offices/<slug>/bulk-replies/``, did not exist when this benchmark was written, so the
   service call the API will make is timed instead.) Preparation = ``prepared_at`` minus ``started_at``, both
   written by the stack.
5. Unless ``--prepare-only``: waits for the sends, SIGKILLs a worker ``--kills`` times (at equal fractions of
   the recipients answered) and restarts it at once, and waits until the bulk reply is done (or
   ``--drain-timeout``). With ``--prepare-only`` the bulk reply is cancelled as soon as it is prepared.
6. Reports: start seconds, preparation seconds, the send rate (creates per second at the fake, in 1 s bins,
   median over the steady part: the middle 80 % of the sending span) versus the cap, the largest 10 s
   window (must not exceed the cap), duplicates (a recipient's number answered 201 more than once) and lost
   recipients (a prepared recipient whose number never got a final answer, 201 or 21610), the recipients'
   and messages' final states, and each worker process's peak RSS (``VmHWM`` in /proc, the kernel's own
   high-water mark: exact, where sampling could miss a peak).

Prints a summary table and writes the JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: bench/ is on the path, the repository is not
    sys.path.insert(0, str(REPO))

from tests.fakes.fake_twilio import ROUTE_CREATE_MESSAGE, FakeTwilio, Scripted  # noqa: E402

PYTHON = sys.executable
SETTINGS = "bench.bulk_settings"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/civicdesk_bench_bulk"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - a benchmark-only token for the fake
OFFICE_NUMBER = "+14155550100"
LETTER_BODY = "Dear {first_name|neighbor}, thank you for writing to {official_title} {official_name}."
# ZIPs in Eastern, Central, Mountain, Arizona (no DST), Pacific, Alaska and Hawaii time.
ZIPS = ("10001", "60601", "80202", "85001", "94103", "99501", "96813")
SEED_BATCH = 5000
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
TARGETS = {
    "start_seconds": 1.0,
    "prepare_10k_seconds": 5.0,
    "rate_tolerance": 0.05,
    "prepare_100k_seconds": 30.0,
    "worker_rss_mb": 300.0,
}


# --- the fake Twilio -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    at: float
    to: str
    status: int
    code: int


class FlakyTwilio(FakeTwilio):
    """The fake Twilio, answering a random share of message creates with 429 or 21610, timing each one."""

    def __init__(self, *, p429: float, p21610: float, seed: int) -> None:
        super().__init__(accounts={ACCOUNT_SID: AUTH_TOKEN})
        self.p429, self.p21610 = p429, p21610
        self._rng = random.Random(seed)
        self.posts: list[Post] = []

    def _pop_script(self, route: str | None) -> Scripted | None:
        # Called with the lock held, right after the request was recorded.
        scripted = super()._pop_script(route)
        if route != ROUTE_CREATE_MESSAGE or scripted is not None:
            return scripted
        to = (self._requests[-1].form.get("To") or [""])[-1]
        draw = self._rng.random()
        if draw < self.p429:
            scripted, status, code = Scripted.twilio_error(429, 20429, "Too Many Requests"), 429, 20429
        elif draw < self.p429 + self.p21610:
            message = "Attempt to send to unsubscribed recipient"
            scripted, status, code = Scripted.twilio_error(400, 21610, message), 400, 21610
        else:
            status, code = 201, 0
        self.posts.append(Post(time.time(), to, status, code))
        return scripted

    def snapshot(self) -> list[Post]:
        with self._lock:
            return list(self.posts)

    def answered(self) -> int:
        with self._lock:
            return sum(1 for post in self.posts if post.status != 429)


# --- processes -------------------------------------------------------------------------------------------


@dataclass
class Proc:
    """A worker or beat subprocess in its own session; ``peaks`` keeps the VmHWM of every incarnation."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)
    peaks: list[tuple[int, float]] = field(default_factory=list)  # (pid, peak RSS in MB)

    def __post_init__(self) -> None:
        self.spawn()

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def record_peak(self) -> None:
        peak = peak_rss_mb(self.process.pid)
        if peak is not None:
            self.peaks = [p for p in self.peaks if p[0] != self.process.pid] + [(self.process.pid, peak)]

    def kill(self) -> None:
        self.record_peak()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.record_peak()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM), in MB; None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _env(args: argparse.Namespace, twilio_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TWILIO_API_BASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        BENCH_TWILIO_API_BASE_URL=twilio_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    return env


def _worker_argv(name: str) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "civicdesk", "worker", "--pool", "solo", "-c", "1",
            "-Q", "civicdesk-bench-bulk", "-n", name, "--without-heartbeat", "--without-gossip",
            "--without-mingle", "--loglevel", "WARNING"]  # fmt: skip


def _wait_ready(names: Sequence[str], timeout: float) -> None:
    from civicdesk.celery import app

    waiting = set(names)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for reply in app.control.ping(destination=list(waiting), timeout=0.5) or []:
            waiting -= set(reply)
    if waiting:
        raise SystemExit(f"workers not ready after {timeout:.0f}s: {sorted(waiting)}")


# --- database ------------------------------------------------------------------------------------------


def _recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"civicdesk_bench_[a-z0-9_]+", name):
        raise SystemExit(
            f"refusing to drop {name!r}: the benchmark only recreates civicdesk_bench_* databases"
        )
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@dataclass(frozen=True, slots=True)
class Seeded:
    office_slug: str
    tag_id: int
    letter_id: int
    staff_id: int
    seconds: float


def seed(*, recipients: int, send_rate: float) -> Seeded:
    """The office, its number, an approved letter, and ``recipients`` tagged constituents who texted."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from constituents.models import Constituent
    from correspondence.models import CorrespondenceSettings
    from correspondence.services import letters
    from messages.models import (
        Channel,
        Conversation,
        ConversationStatus,
        ConversationTag,
        Direction,
        Message,
        MessageStatus,
        Tag,
    )
    from offices.models import Membership, Office, OfficePhoneNumber

    began = time.perf_counter()
    office = Office.objects.create(
        name="Bench Office", slug="bench-bulk", official_name="Pat Bench", official_title="Representative",
        time_zone="America/New_York",
    )  # fmt: skip
    OfficePhoneNumber.objects.create(office=office, e164=OFFICE_NUMBER, send_rate=send_rate)
    # Equal start and end: no quiet hours at all, so no recipient's text is held for the night.
    CorrespondenceSettings.objects.create(
        office=office, quiet_hours_starts=dt.time(0), quiet_hours_ends=dt.time(0)
    )
    users = get_user_model().objects
    staff = users.create_user(username="bench-staff", password=None)
    approver = users.create_user(username="bench-approver", password=None)
    Membership.objects.create(office=office, user=staff, role="staff")
    admin = Membership.objects.create(office=office, user=approver, role="admin")
    letter = letters.letter_create(office=office, actor=staff, name="Clean water", body=LETTER_BODY)
    letters.letter_approve(office=office, membership=admin, pk=letter.pk)
    tag = Tag.objects.create(office=office, name="Clean water")
    now = timezone.now()
    inbound_at = now - dt.timedelta(hours=1)
    for start in range(0, recipients, SEED_BATCH):
        indexes = range(start, min(start + SEED_BATCH, recipients))
        constituents = Constituent.objects.bulk_create(
            Constituent(
                office=office,
                phone=f"+1202{i:07d}",
                first_name=f"Pat{i}",
                last_name="Bench",
                zip_code=ZIPS[i % len(ZIPS)],
            )
            for i in indexes
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(
                office=office,
                constituent=c,
                status=ConversationStatus.OPEN,
                last_activity_at=inbound_at,
                last_inbound_at=inbound_at,
            )
            for c in constituents
        )
        Message.objects.bulk_create(
            Message(
                office=office,
                conversation=conversation,
                direction=Direction.INBOUND,
                channel=Channel.SMS,
                body="Please support the clean water bill.",
                provider_sid=f"SM{i:032x}",
                status=MessageStatus.RECEIVED,
                from_number=constituent.phone,
                to_number=OFFICE_NUMBER,
                created_at=inbound_at,
                processed_at=inbound_at,
            )
            for i, constituent, conversation in zip(indexes, constituents, conversations, strict=True)
        )
        ConversationTag.objects.bulk_create(
            ConversationTag(conversation=conversation, tag=tag) for conversation in conversations
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Seeded(office.slug, tag.pk, letter.pk, staff.pk, time.perf_counter() - began)


# --- measuring -----------------------------------------------------------------------------------------


def rate_figures(posts: Sequence[Post], cap: float) -> dict[str, Any]:
    """Creates per second at the fake: 1 s bins, the median of the steady part (the middle 80 % of the
    span, so the ramp-up and the tail are left out), the mean, and the busiest 10 s window."""
    from bench.common import median

    if len(posts) < 2:
        return {"posts": len(posts)}
    times = sorted(post.at for post in posts)
    first, last = times[0], times[-1]
    span = last - first
    bins = [0] * (int(span) + 1)
    for at in times:
        bins[int(at - first)] += 1
    lo, hi = int(len(bins) * 0.1), max(int(len(bins) * 0.9), int(len(bins) * 0.1) + 1)
    steady = bins[lo:hi] if len(bins) >= 10 else bins
    window, busiest, j = 10.0, 0, 0
    for i, at in enumerate(times):
        while times[j] < at - window:
            j += 1
        busiest = max(busiest, i - j + 1)
    steady_median = median([float(b) for b in steady])
    return {
        "posts": len(posts),
        "span_seconds": round(span, 2),
        "mean_per_second": round((len(posts) - 1) / span, 2) if span > 0 else None,
        "steady_median_per_second": steady_median,
        "steady_bins": len(steady),
        "steady_min_bin": min(steady),
        "steady_max_bin": max(steady),
        "busiest_10s_per_second": round(busiest / window, 2),
        "cap_per_second": cap,
        "steady_vs_cap": round(steady_median / cap - 1, 4),
    }


def delivery_figures(posts: Sequence[Post], phones: set[str]) -> dict[str, Any]:
    by_to: dict[str, Counter[int]] = {}
    for post in posts:
        by_to.setdefault(post.to, Counter())[post.status] += 1
    duplicates = sorted(to for to, statuses in by_to.items() if statuses[201] > 1)
    final = {to for to, statuses in by_to.items() if statuses[201] or statuses[400]}
    lost = sorted(phones - final)
    return {
        "creates": len(posts),
        "answers": dict(Counter(str(post.status) for post in posts)),
        "recipients_sent_201": sum(1 for to in phones if by_to.get(to, Counter())[201]),
        "recipients_21610": sum(1 for to in phones if by_to.get(to, Counter())[400]),
        "duplicates": len(duplicates),
        "duplicate_numbers": duplicates[:20],
        "lost": len(lost),
        "lost_numbers": lost[:20],
        "unknown_numbers_posted": len(set(by_to) - phones),
    }


def database_states(bulk_id: int) -> dict[str, Any]:
    from correspondence.models import BulkRecipient, BulkReply
    from messages.models import Direction, Message

    bulk = BulkReply.objects.get(pk=bulk_id)
    recipients = Counter(
        BulkRecipient.objects.filter(bulk_reply_id=bulk_id).values_list("state", flat=True).iterator()
    )
    messages = Counter(
        Message.objects.filter(office_id=bulk.office_id, direction=Direction.OUTBOUND)
        .values_list("status", flat=True)
        .iterator()
    )
    keys = Message.objects.filter(office_id=bulk.office_id, direction=Direction.OUTBOUND)
    return {
        "bulk_status": bulk.status,
        "recipient_count": bulk.recipient_count,
        "exclusions": bulk.exclusions,
        "recipients_by_state": dict(recipients),
        "outbound_messages_by_status": dict(messages),
        "outbound_messages": keys.count(),
        "outbound_distinct_recipients": keys.values("to_number").distinct().count(),
    }


def _django(args: argparse.Namespace, twilio_url: str) -> None:
    os.environ.update(_env(args, twilio_url))
    import django

    django.setup()


def _machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {
        "benchmark": "bulk_reply",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python -m bench.bulk_reply", *sys.argv[1:]]),
        "machine": _machine(),
        "config": {
            "recipients": args.recipients,
            "send_rate": args.send_rate,
            "workers": args.workers,
            "kills": 0 if args.prepare_only else args.kills,
            "prepare_only": args.prepare_only,
            "p429": args.p429,
            "p21610": args.p21610,
            "quiet_hours": "none: the office's quiet hours start and end at 00:00, which means none",
            "start_timed": "correspondence.services.bulk.bulk_reply_create(start=True): the JSON API "
            "(POST /api/v1/offices/<slug>/bulk-replies/) is not on main",
        },
        "targets": TARGETS,
    }
    fake = FlakyTwilio(p429=args.p429, p21610=args.p21610, seed=args.seed)
    fake.start()
    folder = Path(tempfile.mkdtemp(prefix="cd-bench-bulk-"))
    procs: list[Proc] = []
    try:
        _recreate_database(args.database_url)
        _flush_redis(args.redis_url)
        _django(args, fake.base_url)
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        print(f"seeding {args.recipients:,} recipients ...", flush=True)
        seeded = seed(recipients=args.recipients, send_rate=args.send_rate)
        report["seed_seconds"] = round(seeded.seconds, 1)
        print(f"seeded in {seeded.seconds:.1f} s; starting {args.workers} workers and beat", flush=True)
        env = _env(args, fake.base_url)
        for index in range(args.workers):
            name = f"bulk{index}@bench"
            procs.append(Proc(name, _worker_argv(name), env, folder / f"worker{index}.log"))
        beat = [PYTHON, "-m", "celery", "-A", "civicdesk", "beat", "-s", str(folder / "beat-schedule"),
                "--loglevel", "WARNING"]  # fmt: skip
        beat_proc = Proc("beat", beat, env, folder / "beat.log")
        _wait_ready([p.name for p in procs], READY_TIMEOUT)
        report |= measure(args, fake, seeded, procs)
    finally:
        for proc in procs:
            proc.stop()
        with contextlib.suppress(NameError):
            beat_proc.stop()
        fake.stop()
        report["worker_logs_tail"] = {
            p.name: p.log_path.read_text(errors="replace")[-1500:] for p in procs if p.log_path.exists()
        }
        report["worker_peak_rss_mb"] = {
            f"{p.name} pid {pid}": round(peak, 1) for p in procs for pid, peak in p.peaks
        }
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            _recreate_database(args.database_url, drop_only=True)
            _flush_redis(args.redis_url)
        shutil.rmtree(folder, ignore_errors=True)
    return report


def measure(args: argparse.Namespace, fake: FlakyTwilio, seeded: Seeded, procs: list[Proc]) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from correspondence.models import BulkRecipient, BulkReply, BulkStatus, RecipientState
    from correspondence.services import bulk as bulk_services
    from offices.models import Office

    office = Office.objects.get(slug=seeded.office_slug)
    actor = get_user_model().objects.get(pk=seeded.staff_id)
    began = time.perf_counter()
    bulk = bulk_services.bulk_reply_create(
        office=office,
        actor=actor,
        audience=bulk_services.Audience(tag=seeded.tag_id),
        letter_id=seeded.letter_id,
        start=True,
    )
    start_seconds = time.perf_counter() - began
    print(f"started in {start_seconds:.3f} s: {bulk.recipient_count:,} recipients", flush=True)
    result: dict[str, Any] = {"bulk_reply": bulk.pk, "start_seconds": round(start_seconds, 3)}
    deadline = time.monotonic() + args.prepare_timeout
    prepared_at = None
    while time.monotonic() < deadline:
        prepared_at = BulkReply.objects.filter(pk=bulk.pk).values_list("prepared_at", flat=True).get()
        if prepared_at is not None:
            break
        time.sleep(0.05)
    if prepared_at is None or bulk.started_at is None:
        raise SystemExit(f"not prepared within {args.prepare_timeout:.0f}s")
    if args.prepare_only:
        bulk_services.bulk_reply_cancel(office=office, actor=actor, pk=bulk.pk)
    result["prepare_seconds"] = round((prepared_at - bulk.started_at).total_seconds(), 3)
    result["prepared_rows"] = BulkRecipient.objects.filter(bulk_reply_id=bulk.pk).count()
    print(f"prepared {result['prepared_rows']:,} rows in {result['prepare_seconds']:.2f} s", flush=True)
    for proc in procs:
        proc.record_peak()
    if args.prepare_only:
        time.sleep(2)  # the senders see the cancel within a second
        result["db"] = database_states(bulk.pk)
        return result

    phones = set(
        BulkRecipient.objects.filter(bulk_reply_id=bulk.pk)
        .exclude(state=RecipientState.SKIPPED)
        .values_list("constituent__phone", flat=True)
    )
    eligible = len(phones)
    kill_at = [eligible * (k + 1) // (args.kills + 1) for k in range(args.kills)]
    kills: list[dict[str, Any]] = []
    send_began = time.monotonic()
    deadline = send_began + eligible / args.send_rate * 3 + args.drain_timeout
    status = ""
    stop = threading.Event()

    def sample_peaks() -> None:
        while not stop.wait(1.0):
            for proc in procs:
                proc.record_peak()

    sampler = threading.Thread(target=sample_peaks, daemon=True)
    sampler.start()
    try:
        while time.monotonic() < deadline:
            answered = fake.answered()
            if kill_at and answered >= kill_at[0]:
                kill_at.pop(0)
                victim = procs[len(kills) % len(procs)]
                victim.kill()
                kills.append({"worker": victim.name, "after_answers": answered,
                              "at_seconds": round(time.monotonic() - send_began, 1)})  # fmt: skip
                print(f"SIGKILL {victim.name} after {answered:,} answers; restarting it", flush=True)
                victim.spawn()
            status = BulkReply.objects.filter(pk=bulk.pk).values_list("status", flat=True).get()
            if status == BulkStatus.DONE:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        sampler.join()
    result["send_seconds_until_done"] = round(time.monotonic() - send_began, 1)
    result["done"] = status == BulkStatus.DONE
    result["kills"] = kills
    posts = fake.snapshot()
    result["rate"] = rate_figures(posts, args.send_rate)
    result["delivery"] = delivery_figures(posts, phones)
    result["db"] = database_states(bulk.pk)
    return result


# --- output --------------------------------------------------------------------------------------------


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, met) rows for the summary table."""
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: Any, target: str, met: bool | None) -> None:
        rows.append((name, str(value), target, "-" if met is None else ("yes" if met else "NO")))

    row("start (service call)", f"{report.get('start_seconds')} s", "< 1 s",
        report.get("start_seconds", 1e9) < TARGETS["start_seconds"])  # fmt: skip
    recipients = report["config"]["recipients"]
    prepare_target = (
        TARGETS["prepare_100k_seconds"] if recipients >= 100_000 else TARGETS["prepare_10k_seconds"]
    )
    row(f"prepare {recipients:,}", f"{report.get('prepare_seconds')} s", f"< {prepare_target:.0f} s",
        report.get("prepare_seconds", 1e9) < prepare_target)  # fmt: skip
    if "rate" in report:
        rate = report["rate"]
        cap = rate["cap_per_second"]
        within = abs(rate["steady_vs_cap"]) <= TARGETS["rate_tolerance"]
        steady = f"{rate['steady_median_per_second']}/s ({rate['steady_vs_cap']:+.1%})"
        row("send rate, steady median", steady, f"{cap:g}/s ± 5 %", within)
        row("send rate, mean over span", f"{rate['mean_per_second']}/s", "-", None)
        row("busiest 10 s window", f"{rate['busiest_10s_per_second']}/s", f"<= {cap:g}/s + 1 text",
            rate["busiest_10s_per_second"] <= cap + 0.1)  # fmt: skip
        delivery = report["delivery"]
        kills = len(report.get("kills", []))
        row(f"duplicates ({kills} SIGKILLs)", delivery["duplicates"], "0", delivery["duplicates"] == 0)
        row(f"lost ({kills} SIGKILLs)", delivery["lost"], "0", delivery["lost"] == 0)
        row("done", f"{report['done']} after {report['send_seconds_until_done']} s", "-", None)
    peaks = report.get("worker_peak_rss_mb", {})
    if peaks:
        worst = max(peaks.values())
        row("largest worker peak RSS", f"{worst} MB", "< 300 MB", worst < TARGETS["worker_rss_mb"])
    return rows


def print_summary(report: dict[str, Any]) -> None:
    rows = verdicts(report)
    widths = [max(len(r[i]) for r in [("figure", "value", "target", "met"), *rows]) for i in range(4)]
    for r in [("figure", "value", "target", "met"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)))
    if "db" in report:
        print(f"db: {json.dumps(report['db'])}")
    if "delivery" in report:
        print(
            f"fake twilio: {json.dumps({k: v for k, v in report['delivery'].items() if k != 'lost_numbers'})}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--recipients", type=int, default=10_000, help="constituents in the audience")
    parser.add_argument("--send-rate", type=float, default=75.0, help="the number's cap, segments/s")
    parser.add_argument("--workers", type=int, default=4, help="celery worker processes (solo pool)")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs during the sends")
    parser.add_argument("--prepare-only", action="store_true", help="cancel once prepared (no sends)")
    parser.add_argument("--p429", type=float, default=0.01, help="share of creates answered 429")
    parser.add_argument("--p21610", type=float, default=0.005, help="share of creates answered 21610")
    parser.add_argument("--seed", type=int, default=1, help="the fake's random seed")
    parser.add_argument("--prepare-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=480.0,
                        help="seconds beyond 3x the ideal send time to wait for done")  # fmt: skip
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--keep-db", action="store_true", help="keep the database and Redis data")
    args = parser.parse_args(argv)
    for url in (args.database_url, args.redis_url):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            parser.error("the benchmark runs on loopback only")
    report = run(args)
    print_summary(report)
    out = REPO / "bench" / "results" / f"bulk_reply-{report['date'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"written to {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
