"""Where a voice call's time goes, in process: CPU and SQL statements per webhook of one complete call.

Command (figures go to docs/performance.md, "Voice")::

    .venv/bin/python bench/voice_profile.py --calls 300

No server and no load: one process drives whole calls, exactly as bench/voice_calls.py plays Twilio's part
(incoming call → menu choice "1" → ``<Record>`` action → recording status callback → transcription callback
→ call status callback, each from a new caller, each request signed), through Django's test ``Client``
with ``bench.voice_settings``. For each webhook it reports

- **web CPU**: ``time.process_time()`` of the request, median and mean over ``--calls`` calls (the Django
  test client's own request building is included, as in the bare baseline row it is compared with);
- **PostgreSQL CPU**: the CPU the database backend serving this process used (``/proc/<pid>/stat``), mean;
- **statements** (BEGIN, COMMIT and savepoints included) and **Celery publishes**, counted on separate calls
  (``CaptureQueriesContext`` slows every statement down, so those calls are not timed).

It (re)creates its own database ``civicdesk_bench_voiceprof`` on the machine's PostgreSQL (``DATABASE_URL``),
migrates and seeds it like bench/voice_calls.py, and drops it at the end (``--keep-db`` keeps it). Celery
publishes really go to Redis (``REDIS_URL``, database 9 by default, queue ``civicdesk-bench-voiceprof``);
the queue and the cache keys it wrote are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/civicdesk_bench_voiceprof"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
QUEUE = "civicdesk-bench-voiceprof"
KEY_PREFIX = "civicdesk-bench-voiceprof"
STEPS = ("incoming", "menu", "record", "recording", "transcription", "status")
FORM = "application/x-www-form-urlencoded"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _setup(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.voice_settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["CELERY_DEFAULT_QUEUE"] = QUEUE
    os.environ["VOICE_CONFIG_CACHE_SECONDS"] = "5"
    os.environ.setdefault("OFFICE_NUMBER_CACHE_SECONDS", "5")
    sys.path.insert(0, str(REPO))
    from bench.voice_calls import _recreate_database

    _recreate_database(args.database_url)
    import django

    django.setup()
    from django.conf import settings

    settings.CACHES["default"]["KEY_PREFIX"] = KEY_PREFIX
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class _Publishes:
    """Counts Celery publishes (``Task.apply_async``), letting each through to the broker."""

    def __init__(self) -> None:
        from celery.app.task import Task

        self.count = 0
        original = Task.apply_async

        def counting(task: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(task, *args, **kwargs)

        Task.apply_async = counting  # type: ignore[method-assign,assignment]  # a counting wrapper


def _call(index: int, run: str) -> Callable[[Any, dict[str, Any] | None], None]:
    """A function that plays call number ``index``; it records each step's measurements in ``out``."""
    from bench.voice_calls import ACCOUNT_SID, HOTLINE, TRANSCRIPT, _attribute

    hex_id = f"{run}{index:024x}"
    call_sid, recording_sid, transcription_sid = f"CA{hex_id}", f"RE{hex_id}", f"TR{hex_id}"
    caller = f"+1415{(5_550_000 + index) % 10_000_000:07d}"
    recording_url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"

    def standard(status: str) -> list[tuple[str, str]]:
        return [
            ("AccountSid", ACCOUNT_SID), ("ApiVersion", "2010-04-01"), ("CallSid", call_sid),
            ("CallStatus", status), ("Called", HOTLINE), ("Caller", caller), ("Direction", "inbound"),
            ("From", caller), ("FromCity", "SAN FRANCISCO"), ("FromState", "CA"), ("FromZip", "94103"),
            ("To", HOTLINE),
        ]  # fmt: skip

    def play(driver: Any, out: dict[str, Any] | None) -> None:
        twiml = driver("incoming", "/webhooks/twilio/voice/", standard("ringing"), out)
        menu = _attribute(twiml, "Gather", "action") or "/"
        twiml = driver("menu", menu, [*standard("in-progress"), ("Digits", "1")], out)
        action = _attribute(twiml, "Record", "action") or "/"
        recording_callback = _attribute(twiml, "Record", "recordingStatusCallback") or "/"
        transcription_callback = _attribute(twiml, "Record", "transcribeCallback") or "/"
        record = [*standard("in-progress"), ("Digits", "#"), ("RecordingDuration", "45"),
                  ("RecordingUrl", recording_url)]  # fmt: skip
        driver("record", action, record, out)
        recording = [
            ("AccountSid", ACCOUNT_SID), ("CallSid", call_sid), ("RecordingChannels", "1"),
            ("RecordingDuration", "45"), ("RecordingSid", recording_sid), ("RecordingSource", "RecordVerb"),
            ("RecordingStatus", "completed"), ("RecordingUrl", recording_url),
        ]  # fmt: skip
        driver("recording", recording_callback, recording, out)
        transcription = [
            *standard("completed"), ("RecordingSid", recording_sid), ("RecordingUrl", recording_url),
            ("TranscriptionSid", transcription_sid), ("TranscriptionStatus", "completed"),
            ("TranscriptionText", TRANSCRIPT), ("TranscriptionType", "fast"),
        ]  # fmt: skip
        driver("transcription", transcription_callback, transcription, out)
        driver(
            "status", "/webhooks/twilio/voice/status/", [*standard("completed"), ("CallDuration", "58")], out
        )

    return play


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300, help="timed calls (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default 30)")
    parser.add_argument("--counted", type=int, default=5, help="calls whose statements are counted")
    parser.add_argument("--sql", action="store_true", help="print the statements of one counted call")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    if urlsplit(args.database_url).hostname not in ("127.0.0.1", "localhost"):
        parser.error("the profile runs against a local PostgreSQL only")

    _setup(args)
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.voice_calls import seed
    from messages.twilio.signatures import sign

    ids = seed()
    client = Client(SERVER_NAME="127.0.0.1")
    publishes = _Publishes()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = int(cursor.fetchone()[0])

    def driver(step: str, path: str, params: list[tuple[str, str]], out: dict[str, Any] | None) -> str:
        signature = sign(settings.PUBLIC_BASE_URL + path, params, settings.TWILIO_AUTH_TOKEN)
        headers = {"X-Twilio-Signature": signature}
        published = publishes.count
        if out is not None and out.get("capture"):
            with CaptureQueriesContext(connection) as captured:
                response = client.post(path, urlencode(params), FORM, headers=headers)
            out.setdefault("statements", {}).setdefault(step, []).append(
                [query["sql"] for query in captured.captured_queries]
            )
        else:
            db_before = _backend_cpu(backend)
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.post(path, urlencode(params), FORM, headers=headers)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if out is not None:
                out.setdefault("cpu", {}).setdefault(step, []).append(cpu)
                out.setdefault("wall", {}).setdefault(step, []).append(wall)
                out.setdefault("db", {}).setdefault(step, []).append(_backend_cpu(backend) - db_before)
        if response.status_code >= 300:
            raise SystemExit(f"{step}: HTTP {response.status_code} {response.content[:300]!r}")
        if out is not None:
            out.setdefault("publishes", {}).setdefault(step, []).append(publishes.count - published)
        return response.content.decode()

    def bare(out: dict[str, Any]) -> None:
        params = [("CallSid", "CA" + "0" * 32)]
        path = "/bench/bare-voice-twiml/"
        cpu = time.process_time()
        client.post(path, urlencode(params), FORM)
        out.setdefault("bare", []).append(time.process_time() - cpu)

    results: dict[str, Any] = {}
    try:
        # Every call comes from a new caller (a new constituent and thread), as in bench/voice_calls.py.
        for index in range(args.warmup):
            _call(index, "0000dead")(driver, None)
        timed: dict[str, Any] = {}
        for index in range(args.warmup, args.warmup + args.calls):
            _call(index, "0000beef")(driver, timed)
            bare(timed)
        counted: dict[str, Any] = {"capture": True}
        first = args.warmup + args.calls
        for index in range(first, first + args.counted):
            _call(index, "0000cafe")(driver, counted)
        results = _report(timed, counted, args, ids)
        if args.sql:
            for step in STEPS:
                print(f"--- {step}")
                for sql in counted["statements"][step][-1]:
                    print("   ", sql[:300])
    finally:
        _cleanup(args)
    print(json.dumps(results, indent=2))
    return 0


def _report(
    timed: dict[str, Any], counted: dict[str, Any], args: argparse.Namespace, ids: Any
) -> dict[str, Any]:
    def ms(values: Sequence[float]) -> float:
        return round(1000 * statistics.median(values), 2)

    def mean_ms(values: Sequence[float]) -> float:
        return round(1000 * statistics.fmean(values), 2)

    rows = {}
    for step in STEPS:
        statements = counted["statements"][step]
        rows[step] = {
            "cpu_median_ms": ms(timed["cpu"][step]),
            "cpu_mean_ms": mean_ms(timed["cpu"][step]),
            "postgres_cpu_mean_ms": mean_ms(timed["db"][step]),
            "wall_median_ms": ms(timed["wall"][step]),
            "statements": max(len(s) for s in statements),
            "publishes_per_call": round(statistics.fmean(timed["publishes"][step]), 2),
        }
    calls = len(timed["cpu"]["incoming"])
    per_call = {
        "cpu_ms": round(sum(1000 * sum(timed["cpu"][s]) for s in STEPS) / calls, 2),
        "postgres_cpu_ms": round(sum(1000 * sum(timed["db"][s]) for s in STEPS) / calls, 2),
        "statements": sum(rows[s]["statements"] for s in STEPS),
        "publishes": round(sum(rows[s]["publishes_per_call"] for s in STEPS), 2),
    }
    bare_ms = ms(timed["bare"])
    print(f"voice profile: {calls} calls (after {args.warmup} warm-up), load {os.getloadavg()[0]:.2f}")
    print(f"{'step':14} {'CPU med':>8} {'CPU mean':>9} {'PG CPU':>7} {'stmts':>6} {'publishes':>9}")
    for step, row in rows.items():
        print(
            f"{step:14} {row['cpu_median_ms']:8.2f} {row['cpu_mean_ms']:9.2f} "
            f"{row['postgres_cpu_mean_ms']:7.2f} {row['statements']:6d} {row['publishes_per_call']:9.2f}"
        )
    print(
        f"{'per call':14} {'':8} {per_call['cpu_ms']:9.2f} {per_call['postgres_cpu_ms']:7.2f} "
        f"{per_call['statements']:6d} {per_call['publishes']:9.2f}"
    )
    print(f"{'bare request':14} {bare_ms:8.2f}")
    return {"steps": rows, "per_call": per_call, "bare_request_cpu_median_ms": bare_ms, "seed": ids}


def _cleanup(args: argparse.Namespace) -> None:
    import redis
    from django.db import connections

    client = redis.Redis.from_url(args.redis_url)
    keys = [
        *client.scan_iter(f"{KEY_PREFIX}:*"),
        *client.scan_iter(f"{QUEUE}*"),
        *client.scan_iter(f"_kombu.binding.{QUEUE}*"),
    ]
    if keys:
        client.delete(*keys)
    connections.close_all()
    if not args.keep_db:
        import psycopg

        parts = urlsplit(args.database_url)
        name = parts.path.lstrip("/")
        with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
