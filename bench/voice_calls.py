"""Voice hotline benchmark: complete simulated call flows against gunicorn, load from a separate process.

Command (results go to docs/performance.md, "Voice")::

    .venv/bin/python bench/voice_calls.py --rate 50 --duration 60

One run, on loopback only:

1. (Re)creates the database ``civicdesk_bench_voice`` on the machine's PostgreSQL (``DATABASE_URL``), migrates
   it and seeds one office that is open around the clock, with a main IVR menu (bench/voice_settings.py).
   Redis database 5 (``REDIS_URL``) is flushed before and after: the webhooks enqueue audio downloads there.
2. Starts gunicorn (``--workers``/``--threads``) and, with ``--worker``, a Celery worker.
3. Runs the load generator in a separate process (``load`` below: asyncio, bench/httpclient.py, open
   loop). A new call starts every 1/rate seconds whatever the server's speed, and plays Twilio's part in a
   whole call, each request signed: incoming call → menu choice (1: voicemail) → ``<Record>`` action →
   recording status callback → transcription callback → call status. It follows the URLs in the TwiML it
   gets back.
4. Baseline, same run and server: the same requests, same rate, to a bare view returning empty TwiML.
5. Counts, in the database, the calls and voicemails the load created: every voicemail sent must be stored.

Bounded: ``--duration`` seconds of arrivals (and ``--max-calls``), a 10 s timeout per request, and a deadline
of duration + 60 s per phase. Prints the configuration and the figures, and writes them as JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import math
import os
import platform
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from bench.httpclient import HttpPool

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SETTINGS = "bench.voice_settings"
DEFAULT_PORT = 8766
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/civicdesk_bench_voice"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - a benchmark-only token, set the same in bench/voice_settings.py
ACCOUNT_SID = "AC" + "b" * 32
HOTLINE = "+15005550100"
TWIML_STEPS = ("incoming", "menu", "record")
CALLBACK_STEPS = ("recording", "transcription", "status")
REQUEST_TIMEOUT = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TRANSCRIPT = "Hello, this is a benchmark caller. Please support the clean water bill. Thank you."


# --- statistics -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    return {
        name: round(percentile(seconds, q) * 1000, 1)
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
    } | {"n": len(seconds)}


# --- the load generator (a process of its own; no Django) --------------------------------------------------


def _sign(url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's signature (HMAC-SHA1 over the URL and the sorted name+value pairs), as the SDK's
    ``RequestValidator.compute_signature`` computes it for unique names; written out here because the SDK
    costs the load generator more CPU than the HMAC. The server checks it with the SDK."""
    text = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(AUTH_TOKEN.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _attribute(twiml: str, verb: str, name: str) -> str | None:
    match = re.search(rf'<{verb}\b[^>]*\b{name}="([^"]+)"', twiml)
    return html.unescape(match.group(1)) if match else None


@dataclass
class LoadResult:
    target: str
    rate: float
    duration: float
    calls_started: int = 0
    calls_completed: int = 0  # every request answered 2xx, and the TwiML had the expected verb
    voicemails_sent: int = 0  # calls whose <Record> action was answered 2xx: each must be stored
    acknowledged_recordings: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    max_start_lag: float = 0.0
    first_start: float = 0.0
    last_start: float = 0.0
    last_end: float = 0.0
    generator_cpu_seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def report(self) -> dict[str, Any]:
        twiml = [value for step in TWIML_STEPS for value in self.latencies.get(step, [])]
        callbacks = [value for step in CALLBACK_STEPS for value in self.latencies.get(step, [])]
        span = max(self.last_start - self.first_start, 1e-9)
        return {
            "target": self.target,
            "offered_calls_per_second": self.rate,
            "arrival_seconds": round(span, 2),
            "calls_started": self.calls_started,
            "calls_completed": self.calls_completed,
            "achieved_start_rate": round((self.calls_started - 1) / span, 2) if self.calls_started > 1 else 0,
            "completed_calls_per_second": round(
                self.calls_completed / max(self.last_end - self.first_start, 1e-9), 2
            ),
            "voicemails_sent": self.voicemails_sent,
            "errors": self.errors,
            "max_generator_start_lag_ms": round(self.max_start_lag * 1000, 1),
            "twiml_ms": summary_ms(twiml),
            "callback_ms": summary_ms(callbacks),
            "per_step_ms": {step: summary_ms(values) for step, values in self.latencies.items()},
            "generator_cpu_seconds": round(self.generator_cpu_seconds, 2),
        }


class _Flow:
    """One simulated call, as Twilio drives it."""

    def __init__(
        self, pool: HttpPool, base: str, result: LoadResult, *, index: int, run_id: str, bare: str | None
    ) -> None:
        self.pool, self.base, self.result, self.bare = pool, base, result, bare
        hex_id = f"{run_id}{index:024x}"
        self.call_sid, self.recording_sid, self.transcription_sid = (
            f"CA{hex_id}",
            f"RE{hex_id}",
            f"TR{hex_id}",
        )
        self.caller = f"+1415{(5_550_000 + index) % 10_000_000:07d}"  # a new caller per call

    def standard(self, status: str) -> list[tuple[str, str]]:
        return [
            ("AccountSid", ACCOUNT_SID), ("ApiVersion", "2010-04-01"), ("CallSid", self.call_sid),
            ("CallStatus", status), ("Called", HOTLINE), ("Caller", self.caller), ("Direction", "inbound"),
            ("From", self.caller), ("FromCity", "SAN FRANCISCO"), ("FromState", "CA"), ("FromZip", "94103"),
            ("To", HOTLINE),
        ]  # fmt: skip

    async def post(
        self, step: str, path: str, params: list[tuple[str, str]], expect: str | None
    ) -> str | None:
        path = self.bare or path
        url = self.base + path
        headers = {
            "X-Twilio-Signature": _sign(url, params),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = urlencode(params).encode()
        began = time.perf_counter()
        try:
            status, raw = await self.pool.post(path, body, headers)
            text = raw.decode()
        except Exception as exc:  # any transport failure counts as an error of this step
            self.result.error(f"{step}:{type(exc).__name__}")
            return None
        self.result.latencies.setdefault(step, []).append(time.perf_counter() - began)
        if not 200 <= status < 300:
            self.result.error(f"{step}:HTTP {status}")
            return None
        if expect is not None and self.bare is None and expect not in text:
            self.result.error(f"{step}:no {expect}")
            return None
        return text

    async def run(self) -> None:
        recording_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{self.recording_sid}"
        )
        twiml = await self.post("incoming", "/webhooks/twilio/voice/", self.standard("ringing"), "<Gather")
        menu = _attribute(twiml or "", "Gather", "action") or "/"
        if twiml is None:
            return
        twiml = await self.post("menu", menu, [*self.standard("in-progress"), ("Digits", "1")], "<Record")
        if twiml is None:
            return
        action = _attribute(twiml, "Record", "action") or "/"
        recording_callback = _attribute(twiml, "Record", "recordingStatusCallback") or "/"
        transcription_callback = _attribute(twiml, "Record", "transcribeCallback") or "/"
        record = [*self.standard("in-progress"), ("Digits", "#"), ("RecordingDuration", "45"),
                  ("RecordingUrl", recording_url)]  # fmt: skip
        if await self.post("record", action, record, "<Hangup") is None:
            return
        self.result.voicemails_sent += 1
        self.result.acknowledged_recordings.append(self.recording_sid)
        recording = [
            ("AccountSid", ACCOUNT_SID), ("CallSid", self.call_sid), ("RecordingChannels", "1"),
            ("RecordingDuration", "45"), ("RecordingSid", self.recording_sid),
            ("RecordingSource", "RecordVerb"),
            ("RecordingStatus", "completed"), ("RecordingUrl", recording_url),
        ]  # fmt: skip
        if await self.post("recording", recording_callback, recording, None) is None:
            return
        transcription = [
            *self.standard("completed"), ("RecordingSid", self.recording_sid),
            ("RecordingUrl", recording_url),
            ("TranscriptionSid", self.transcription_sid), ("TranscriptionStatus", "completed"),
            ("TranscriptionText", TRANSCRIPT), ("TranscriptionType", "fast"),
        ]  # fmt: skip
        if await self.post("transcription", transcription_callback, transcription, None) is None:
            return
        status = [*self.standard("completed"), ("CallDuration", "58")]
        if await self.post("status", "/webhooks/twilio/voice/status/", status, None) is None:
            return
        self.result.calls_completed += 1


async def generate(args: argparse.Namespace) -> LoadResult:
    if str(REPO) not in sys.path:  # run as a script: bench/ is on the path, the repository is not
        sys.path.insert(0, str(REPO))
    from bench.httpclient import HttpPool

    result = LoadResult(target=args.target, rate=args.rate, duration=args.duration)
    bare = "/bench/bare-voice-twiml/" if args.target == "baseline" else None
    total = min(args.max_calls, int(args.rate * args.duration))
    pool = HttpPool(args.base_url, limit=args.connections, timeout=REQUEST_TIMEOUT)
    cpu_before = time.process_time()
    try:
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.2
        deadline = start + args.duration + 60

        async def one(index: int) -> None:
            await _Flow(pool, args.base_url, result, index=index, run_id=args.run_id, bare=bare).run()
            result.last_end = time.perf_counter()

        for index in range(total):
            due = start + index / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            result.max_start_lag = max(result.max_start_lag, now - due)
            if index == 0:
                result.first_start = now
            result.last_start = now
            result.calls_started += 1
            tasks.append(asyncio.create_task(one(index)))
        _, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.perf_counter()))
        for task in pending:
            task.cancel()
            result.error("deadline")
    finally:
        pool.close()
    result.generator_cpu_seconds = time.process_time() - cpu_before
    return result


def load_main(args: argparse.Namespace) -> int:
    result = asyncio.run(generate(args))
    if args.acknowledged:
        Path(args.acknowledged).write_text("\n".join(result.acknowledged_recordings))
    print(json.dumps(result.report()))
    return 0


# --- inside Django: seed and count -------------------------------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed_main(args: argparse.Namespace) -> int:
    _django()
    print(json.dumps(seed()))
    return 0


def seed() -> dict[str, int]:
    """One office open around the clock, with its number and main IVR menu (bench/voice_profile.py too)."""
    import datetime as _dt

    from messages.models import Tag, TriageQueue
    from offices.models import IvrAction, IvrMenu, IvrOption, Office, OfficeHours, OfficePhoneNumber

    office = Office.objects.create(
        name="Bench Office", slug="bench-voice", official_name="Pat Bench", official_title="Representative",
        time_zone="America/New_York",
    )  # fmt: skip
    OfficePhoneNumber.objects.create(office=office, e164=HOTLINE)
    OfficeHours.objects.bulk_create(
        OfficeHours(office=office, weekday=day, opens_at=_dt.time(0), closes_at=_dt.time(23, 59, 59, 999999))
        for day in range(7)
    )
    Tag.objects.create(office=office, name="Health care")
    TriageQueue.objects.create(office=office, name="Casework")
    main = IvrMenu.objects.create(
        office=office, name="Main", is_main=True,
        greeting_text="Thank you for calling the office of Pat Bench.",
        info_text="We are at 1 Bench Street.", dial_numbers=["+12025550111", "+12025550112"],
    )  # fmt: skip
    option = IvrOption.objects.create(
        menu=main, digit="1", action=IvrAction.VOICEMAIL, prompt="For health care, press 1.",
        speech_keywords="health", topic="Health care", queue_name="Casework",
    )  # fmt: skip
    IvrOption.objects.create(
        menu=main, digit="2", action=IvrAction.STAFF, prompt="To talk to staff, press 2."
    )
    IvrOption.objects.create(menu=main, digit="3", action=IvrAction.INFO, prompt="For our address, press 3.")
    return {"office": office.pk, "main": main.pk, "option": option.pk}


def count_main(args: argparse.Namespace) -> int:
    _django()
    from messages.models import Channel, Message
    from voice.models import ParkedVoiceCallback

    calls = Message.objects.filter(channel=Channel.CALL, provider_sid__startswith=f"CA{args.run_id}")
    voicemails = Message.objects.filter(
        channel=Channel.VOICEMAIL, provider_sid__startswith=f"RE{args.run_id}"
    )
    acknowledged = set(Path(args.acknowledged).read_text().split()) if args.acknowledged else set()
    stored = Message.objects.filter(channel=Channel.VOICEMAIL, provider_sid__in=acknowledged)
    print(
        json.dumps(
            {
                "calls_stored": calls.count(),
                "calls_outcome_voicemail": calls.filter(details__outcome="voicemail").count(),
                "voicemails_stored": voicemails.count(),
                "voicemails_transcribed": voicemails.filter(details__transcript_status="completed").count(),
                "voicemails_with_audio": voicemails.filter(details__audio="stored").count(),
                "parked_unapplied": ParkedVoiceCallback.objects.filter(applied_at__isnull=True).count(),
                "acknowledged_voicemails": len(acknowledged),
                "acknowledged_but_missing": len(acknowledged) - stored.count(),
            }
        )
    )
    return 0


# --- the orchestrator -----------------------------------------------------------------------------------


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        PUBLIC_BASE_URL=args.base_url,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    return env


def _run_json(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def _recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"civicdesk_bench_[a-z0-9_]+", name):
        raise SystemExit(
            f"refusing to drop {name!r}: the benchmark only recreates civicdesk_bench_* databases"
        )
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def _cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _database_backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the server's own CPU, per phase)."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [parts.path.lstrip("/")]
        ).fetchall()
    return [int(row[0]) for row in rows]


def _wait_healthy(base_url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=2) as response:  # noqa: S310 - loopback
                if response.status in (200, 503):
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer /healthz in time")


def run_main(args: argparse.Namespace) -> int:
    env = _env(args)
    run_id = secrets.token_hex(4)
    started = dt.datetime.now(dt.UTC)
    with_worker = " + celery worker" if args.worker else ""
    print(
        f"voice benchmark {run_id}: {args.rate} calls/s for {args.duration} s; "
        f"gunicorn {args.workers}x{args.threads}{with_worker}; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    _recreate_database(args.database_url)
    _flush_redis(args.redis_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=REPO, check=True)
    ids = _run_json([PYTHON, __file__, "seed"], env, 120)
    logs = REPO / ".data" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    services: list[subprocess.Popen[bytes]] = []
    gunicorn = [PYTHON, "-m", "gunicorn", "civicdesk.wsgi", "--bind", urlsplit(args.base_url).netloc,
                "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning",
                "--graceful-timeout", "5", "--no-control-socket"]  # fmt: skip
    with (logs / f"voice-{run_id}-gunicorn.log").open("wb") as log:
        services.append(
            subprocess.Popen(gunicorn, env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
        )
    if args.worker:
        # Niced as a deployment sharing cores with the web tier would run it: follow-ups (audio downloads)
        # wait, the webhooks Twilio is waiting on do not.
        worker = ["nice", "-n", str(args.worker_nice), PYTHON, "-m", "celery", "-A", "civicdesk", "worker",
                  "-l", "warning", "-c", "1", "-Q", "civicdesk-bench-voice", "--without-mingle",
                  "--without-gossip"]  # fmt: skip
        with (logs / f"voice-{run_id}-worker.log").open("wb") as log:
            services.append(
                subprocess.Popen(worker, env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
            )
    report: dict[str, Any] = {}
    acknowledged = logs / f"voice-{run_id}-acknowledged.txt"
    try:
        _wait_healthy(args.base_url, time.monotonic() + 60)
        load = [PYTHON, __file__, "load", "--base-url", args.base_url, "--rate", str(args.rate),
                "--duration", str(args.duration), "--max-calls", str(args.max_calls),
                "--connections", str(args.connections), "--run-id", run_id]  # fmt: skip
        deadline = args.duration + 120
        # Warm up both paths (imports, connections, the query plan cache), then measure.
        _run_json([*load, "--target", "voice", "--duration", "3", "--run-id", "00000000"], env, 120)
        phases: dict[str, Any] = {}
        for target in ("baseline", "voice"):
            pids = [pid for service in services for pid in _tree(service.pid)]
            database_pids = _database_backend_pids(args.database_url)
            cpu, database_cpu = _cpu_seconds(pids), _cpu_seconds(database_pids)
            load_before = os.getloadavg()[0]
            extra = ["--acknowledged", str(acknowledged)] if target == "voice" else []
            phases[target] = _run_json([*load, "--target", target, *extra], env, deadline)
            phases[target]["server_cpu_seconds"] = round(_cpu_seconds(pids) - cpu, 2)
            phases[target]["postgres_cpu_seconds"] = round(_cpu_seconds(database_pids) - database_cpu, 2)
            phases[target]["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        time.sleep(args.settle)
        counts = _run_json(
            [PYTHON, __file__, "count", "--run-id", run_id, "--acknowledged", str(acknowledged)], env, 120
        )
        voice = phases["voice"]
        report = {
            "benchmark": "voice_calls",
            "run_id": run_id,
            "date": started.isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average_at_start": os.getloadavg(),
            },
            "config": {
                "rate": args.rate,
                "duration": args.duration,
                "gunicorn_workers": args.workers,
                "gunicorn_threads": args.threads,
                "celery_worker": args.worker,
                "connections": args.connections,
                "database": urlsplit(args.database_url).path.lstrip("/"),
                "seed": ids,
            },
            "baseline": phases["baseline"],
            "voice": voice,
            "db": counts,
            # Lost: Twilio was told "stored" (2xx on the <Record> action) and the row is not there.
            "lost_voicemails": counts["acknowledged_but_missing"],
        }
    finally:
        for service in services:
            try:
                os.killpg(service.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for service in services:
            try:
                service.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
        _flush_redis(args.redis_url)
    _print(report)
    out = REPO / "bench" / "results" / f"voice_calls-{started:%Y%m%dT%H%M%SZ}-{run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")
    return 0


def _print(report: dict[str, Any]) -> None:
    for target in ("baseline", "voice"):
        phase = report[target]
        twiml, callbacks = phase["twiml_ms"], phase["callback_ms"]
        print(
            f"{target:8}  started {phase['calls_started']} at {phase['achieved_start_rate']}/s, "
            f"completed {phase['calls_completed']}; "
            f"TwiML p50/p95/p99 {twiml['p50']}/{twiml['p95']}/{twiml['p99']} ms; "
            f"callbacks p99 {callbacks['p99']} ms; errors {phase['errors'] or 'none'}; "
            f"CPU: server {phase['server_cpu_seconds']} s, postgres {phase['postgres_cpu_seconds']} s, "
            f"generator {phase['generator_cpu_seconds']} s; load average {phase['load_average']}"
        )
    print(f"db: {report['db']}; lost voicemails: {report['lost_voicemails']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "load", "seed", "count"])
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals (default 60)")
    parser.add_argument("--max-calls", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="load generator connection pool")
    parser.add_argument("--worker", action="store_true", help="also run a Celery worker (audio downloads)")
    parser.add_argument("--worker-nice", type=int, default=10, help="the worker's niceness (default 10)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before counting")
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--target", choices=["voice", "baseline"], default="voice")
    parser.add_argument("--run-id", default="00000000")
    parser.add_argument("--acknowledged", default="", help="file of acknowledged RecordingSids (load, count)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{8}", args.run_id):
        parser.error("--run-id is 8 hex digits")
    if urlsplit(args.base_url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("the benchmark runs on loopback only")
    return {"run": run_main, "load": load_main, "seed": seed_main, "count": count_main}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
