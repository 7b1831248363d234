"""SMS ingest benchmark: signed inbound-SMS webhooks against the real stack.

Set-up, all on this machine: gunicorn serving ``civicdesk.wsgi`` with ``bench.settings``, the machine's
PostgreSQL (a dedicated database, created and dropped here), the machine's Redis (a dedicated database
number), and one real Celery worker consuming the queue the webhooks enqueue on commit. The load generator is
a separate process (asyncio, bench/httpclient.py) on loopback that fires signed webhooks open-loop at a
fixed rate.

It measures, in one run:

1. **Ladder.** Steps of ``--step-seconds``: signed webhooks to ``/webhooks/twilio/sms/`` at the i-th of
   ``--rates``, then the same requests to a bare view returning empty TwiML (``/bench/bare-twiml/``) on the
   same server at the i-th of ``--bare-rates``, interleaved. The sustained rate of a target is the highest
   rate that passed (p99 < ``--p99-ms`` measured from the scheduled send time, no errors, and for webhooks no
   lost messages) before two consecutive failures. Repeated ``--repeats`` times; medians are reported.
2. **Loss and duplicates.** Every SID acknowledged with 200 must be in the database exactly once. Some posts
   are deliberate re-sends of an earlier SID, some are simultaneous pairs; they must collapse into one row.
3. **End-to-end.** Each of ``--e2e-rates`` messages/s for ``--e2e-seconds``: a poller process reads the inbox
   selector (``inbox_conversations(office=...)``) every ``--poll-ms`` and notes when each message first shows
   as its conversation's latest message. Reported as p50/p95/p99 of "seen" minus "scheduled send".

Run ``python -m bench.sms_ingest run --help``; bench/README.md explains the method and the flags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import (
    PYTHON,
    REPO,
    LoadResult,
    PreparedRequest,
    Service,
    database_backends_cpu,
    latency_summary_ms,
    loadavg,
    machine_cpu_seconds,
    median,
    open_loop,
    parent_pid,
    software_versions,
    start_service,
    tree_cpu_seconds,
    wait_for_http,
    write_json,
)

FIXTURE = REPO / "tests" / "messages" / "twilio" / "fixtures" / "sms_received__basic.json"
WEBHOOK_PATH = "/webhooks/twilio/sms/"
BARE_PATH = "/bench/bare-twiml/"
OFFICE_NUMBER = "+14155550100"
ACCOUNT_SID = "AC" + "0" * 32  # the fixture's AccountSid
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - shared by the server (env) and the load generator
QUEUE = "civicdesk-bench-sms"
# Returning constituents: +1 212 555 0000 onwards. First-time senders: +1 300 000 0000 onwards.
POOL_BASE = 2125550000
NEW_SENDER_BASE = 3000000000
# gunicorn defaults (bench/README.md says why) and the ladders, per second.
WORKER_CLASS, WORKERS, THREADS = "gthread", 2, 2
WEBHOOK_RATES = "10,20,30,40,50,60,80,100,150"
BARE_RATES = "200,300,400,500,600,700,800,1000,1200,1500"
BODIES = [
    "Please vote for H.R. 1234. It matters to my family.",
    "The bus route on Elm St was cut and I can't get to work. What can the office do?",
    "Thank you for holding the town hall last week!",
    "My mother's Social Security check hasn't arrived for two months. Case number 5512.",
    "I oppose the pipeline through the county park.",
]


# --- the load generator process ---------------------------------------------------------------------


def sid_for(prefix: str, seq: int) -> str:
    """SM + 8 hex (run) + 4 hex (step) + 20 hex (sequence): unique, valid-shaped, findable by prefix."""
    return f"{prefix}{seq:020x}"


def seq_of(sid: str) -> int:
    return int(sid[-20:], 16)


def build_requests(spec: dict[str, Any]) -> list[PreparedRequest]:
    """The step's requests, signed before the clock starts so signing costs the generator nothing later."""
    from messages.twilio.signatures import sign

    template: dict[str, str] = json.loads(FIXTURE.read_text())["params"]
    rng = random.Random(spec["seed"])
    rate, count = spec["rate"], int(spec["rate"] * spec["seconds"])
    sign_url = spec["public_base_url"] + spec["path"]
    pool_size, new_fraction, new_next = spec["pool_size"], spec["new_fraction"], spec["new_sender_base"]
    plan: list[tuple[float, str, str, str]] = []  # (at, sid, from, body)
    for seq in range(count):
        at = seq / rate
        if spec["senders"] == "each_once":
            sender = POOL_BASE + seq % pool_size
        elif spec["senders"] == "round_robin":
            sender = POOL_BASE + (spec["start_seq"] + seq) % pool_size
        elif rng.random() < new_fraction:
            sender, new_next = new_next, new_next + 1
        else:
            sender = POOL_BASE + rng.randrange(pool_size)
        body = f"e2e:{seq:06d} {rng.choice(BODIES)}" if spec["body"] == "e2e" else rng.choice(BODIES)
        plan.append((at, sid_for(spec["sid_prefix"], seq), f"+1{sender}", body))
    # Deliberate duplicates: re-sends of an earlier SID within ~2 s, and simultaneous pairs (same instant).
    extra: list[tuple[float, str, str, str]] = []
    for at, sid, sender, body in plan:
        roll = rng.random()
        if roll < spec["dup_fraction"]:
            extra.append((min(at + rng.uniform(0.05, 2.0), spec["seconds"]), sid, sender, body))
        elif roll < spec["dup_fraction"] + spec["dup_pair_fraction"]:
            extra.append((at, sid, sender, body))
    plan.extend(extra)
    plan.sort(key=lambda item: item[0])
    seen: set[str] = set()
    requests = []
    for at, sid, sender, body in plan:
        params = dict(template, MessageSid=sid, SmsMessageSid=sid, SmsSid=sid, From=sender, Body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(sign_url, params, spec["auth_token"]),
        }
        tag = sid + ("*" if sid in seen else "")  # "*" marks a deliberate duplicate post
        seen.add(sid)
        requests.append(PreparedRequest(at, spec["path"], urlencode(params).encode(), headers, tag))
    return requests


def loadgen_main(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    requests = build_requests(spec)
    roots: dict[str, int] = spec["cpu_roots"]
    cpu_before = {name: tree_cpu_seconds(root) for name, root in roots.items()}
    backends_before = database_backends_cpu(roots["postgres"], spec["database"])
    machine_before = machine_cpu_seconds()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    result = asyncio.run(
        open_loop(
            spec["base_url"],
            requests,
            connections=spec["connections"],
            timeout=spec["timeout"],
            deadline=spec["seconds"] + 1,
        )
    )
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    machine_after = machine_cpu_seconds()
    cpu = {name: tree_cpu_seconds(root) - cpu_before[name] for name, root in roots.items()}
    backends_after = database_backends_cpu(roots["postgres"], spec["database"])
    # The bench database's backends that lived through the step (gunicorn's persistent connections); a
    # backend that exited meanwhile (the worker reconnects per task) is only in the server total.
    cpu["postgres_bench_db"] = sum(t - backends_before.get(pid, 0.0) for pid, t in backends_after.items())
    cpu["loadgen"] = (self_after.ru_utime + self_after.ru_stime) - (
        self_before.ru_utime + self_before.ru_stime
    )
    cpu["machine_busy"] = machine_after[0] - machine_before[0]
    cpu["machine_total"] = machine_after[1] - machine_before[1]
    write_json(Path(spec["out"]), {"load": result.to_json(), "cpu": cpu})


# --- the inbox poller process -----------------------------------------------------------------------------


def poller_main(
    *, office_id: int, out: Path, stop_file: Path, poll_ms: int, slack: float, max_seconds: float
) -> None:
    """Read the inbox selector every ``poll_ms`` and record when each ``e2e:<seq>`` preview is first seen.

    Each poll asks the selector for conversations active in the last ``slack`` seconds (every tenth poll,
    the last 10 s, to catch a message whose commit lagged its activity timestamp). The wall clock is read
    after the rows are in hand, so query time counts toward the latency.
    """
    import django

    django.setup()
    from datetime import timedelta

    from django.utils import timezone

    from messages.selectors.inbox import inbox_conversations
    from offices.models import Office

    office = Office.objects.get(pk=office_id)
    seen: dict[int, float] = {}
    polls, rows_read, busy = 0, 0, 0.0
    started = time.time()
    while not stop_file.exists() and time.time() - started < max_seconds:
        tick = time.monotonic()
        window = 10.0 if polls % 10 == 9 else slack
        conversations = list(
            inbox_conversations(office=office).filter(
                last_activity_at__gte=timezone.now() - timedelta(seconds=window)
            )
        )
        now = time.time()
        for conversation in conversations:
            token = conversation.last_message_preview.split(" ", 1)[0]
            if token.startswith("e2e:"):
                seen.setdefault(int(token[4:]), now)
        polls += 1
        rows_read += len(conversations)
        elapsed = time.monotonic() - tick
        busy += elapsed
        time.sleep(max(0.0, poll_ms / 1000 - elapsed))
    write_json(out, {"seen": seen, "polls": polls, "rows_read": rows_read, "poll_seconds": busy})


# --- the orchestrator ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    args: argparse.Namespace
    env: dict[str, str]
    run_dir: Path
    run_id: str
    services: dict[str, Service] = field(default_factory=dict)
    office_id: int = 0
    postmaster_pid: int = 0
    step_counter: int = 0
    new_sender_next: int = NEW_SENDER_BASE

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.args.port}"

    def next_step(self) -> tuple[int, str]:
        self.step_counter += 1
        return self.step_counter, f"SM{self.run_id}{self.step_counter:04x}"


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        REDIS_URL=args.redis_url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{args.port}",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        CELERY_DEFAULT_QUEUE=QUEUE,
        PYTHONPATH=str(REPO),
    )
    return env


def database_create(name: str, *, drop_first: bool) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if drop_first:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()  # only the benchmark's own database number
    finally:
        client.close()


def setup_database(stack: Stack) -> None:
    """Create and migrate the benchmark database, then seed one office and its number with the ORM."""
    database_create(stack.args.database, drop_first=True)
    redis_flush(stack.args.redis_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from offices.models import Office, OfficePhoneNumber

    office = Office.objects.create(
        name="Bench Office", slug="bench", official_name="Pat Bench", official_title="Representative"
    )
    OfficePhoneNumber.objects.create(office=office, e164=OFFICE_NUMBER, label="bench")
    stack.office_id = office.pk
    stack.postmaster_pid = postmaster_pid()


def gunicorn_argv(args: argparse.Namespace) -> list[str]:
    argv = [
        PYTHON, "-m", "gunicorn", "civicdesk.wsgi:application",
        "--bind", f"127.0.0.1:{args.port}",
        "--workers", str(args.workers),
        "--worker-class", args.worker_class,
        "--keep-alive", str(args.keep_alive),
        "--backlog", "2048",
        "--timeout", "30",
        "--log-level", "warning",
    ]  # fmt: skip
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads)]
    return argv


def celery_argv(args: argparse.Namespace) -> list[str]:
    return [
        str(Path(PYTHON).parent / "celery"), "-A", "civicdesk", "worker",
        "-Q", QUEUE, "-c", str(args.celery_concurrency),
        "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"bench-sms-{os.getpid()}@%h",
    ]  # fmt: skip


def start_stack(stack: Stack) -> None:
    logs = stack.run_dir / "logs"
    stack.services["celery"] = start_service("celery", celery_argv(stack.args), env=stack.env, log_dir=logs)
    stack.services["gunicorn"] = start_service(
        "gunicorn", gunicorn_argv(stack.args), env=stack.env, log_dir=logs
    )
    wait_for_http(stack.base_url + "/healthz", timeout=60)
    # One signed webhook through the whole path: stored, enqueued, processed by the worker.
    from messages.twilio.signatures import sign

    params = dict(json.loads(FIXTURE.read_text())["params"])
    sid = "SM" + uuid.uuid4().hex
    params.update(MessageSid=sid, SmsMessageSid=sid, SmsSid=sid, From="+12125559999")
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - loopback URL built here
        stack.base_url + WEBHOOK_PATH,
        data=urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(stack.env["PUBLIC_BASE_URL"] + WEBHOOK_PATH, params, AUTH_TOKEN)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200, response.status
    from messages.models import Message

    deadline = time.monotonic() + 60
    while not Message.objects.filter(provider_sid=sid, processed_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not process the probe message within 60 s")
        time.sleep(0.2)


def postmaster_pid() -> int:
    """The PostgreSQL server's main process: CPU of the whole server is accounted from its process tree
    (the server is shared, so this includes other databases' work; benchmarks on this machine report it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return parent_pid(cursor.fetchone()[0])


def run_load(stack: Stack, spec: dict[str, Any], extra_roots: dict[str, int] | None = None) -> dict[str, Any]:
    """Run one step in a separate load-generator process; returns its raw result.

    The generator also accounts the CPU used by gunicorn, the worker, PostgreSQL and ``extra_roots``.
    """
    spec_path = stack.run_dir / f"step-{spec['step']:03d}.spec.json"
    spec["out"] = str(stack.run_dir / f"step-{spec['step']:03d}.result.json")
    spec["cpu_roots"] = {
        "gunicorn": stack.services["gunicorn"].proc.pid,
        "celery": stack.services["celery"].proc.pid,
        "postgres": stack.postmaster_pid,
        **(extra_roots or {}),
    }
    write_json(spec_path, spec)
    subprocess.run(
        [PYTHON, "-m", "bench.sms_ingest", "loadgen", "--spec", str(spec_path)],
        cwd=REPO,
        env=stack.env,
        check=True,
        timeout=spec["seconds"] + spec["timeout"] + 120,
    )
    result: dict[str, Any] = json.loads(Path(spec["out"]).read_text())
    return result


def make_spec(stack: Stack, *, target: str, rate: float, seconds: float, **overrides: Any) -> dict[str, Any]:
    step, prefix = stack.next_step()
    path = WEBHOOK_PATH if target == "webhook" else BARE_PATH
    spec: dict[str, Any] = {
        "step": step,
        "target": target,
        "rate": rate,
        "seconds": seconds,
        "path": path,
        "base_url": stack.base_url,
        "database": stack.args.database,
        "public_base_url": stack.env["PUBLIC_BASE_URL"],
        "auth_token": AUTH_TOKEN,
        "sid_prefix": prefix,
        "seed": hash((stack.run_id, step)) & 0xFFFFFFFF,
        "senders": "random",
        "pool_size": stack.args.senders,
        "new_fraction": stack.args.new_sender_fraction,
        "new_sender_base": stack.new_sender_next,
        "start_seq": 0,
        "body": "plain",
        "dup_fraction": stack.args.dup_fraction,
        "dup_pair_fraction": stack.args.dup_pair_fraction,
        "connections": stack.args.connections,
        "timeout": 15.0,  # Twilio gives up on a webhook after 15 s
    }
    spec.update(overrides)
    # First-time senders are numbered across the whole run, so a "new" constituent is always new.
    stack.new_sender_next += int(rate * seconds)
    return spec


def drain(stack: Stack, *, timeout: float) -> tuple[float, int]:
    """Wait until the worker has processed every inbound message. Returns (seconds waited, still pending)."""
    from messages.models import Direction, Message

    started = time.monotonic()
    pending = Message.objects.filter(direction=Direction.INBOUND, processed_at__isnull=True)
    while (left := pending.count()) and time.monotonic() - started < timeout:
        time.sleep(0.25)
    return time.monotonic() - started, left


def db_check(prefix: str, load: LoadResult) -> dict[str, int]:
    """Compare what the database holds for this step with what the server acknowledged."""
    from django.db.models import Count

    from messages.models import Message

    rows = Message.objects.filter(provider_sid__startswith=prefix)
    stored = set(rows.values_list("provider_sid", flat=True))
    duplicated = rows.values("provider_sid").annotate(n=Count("id")).filter(n__gt=1).count()
    acked = {o.tag.rstrip("*") for o in load.outcomes if o.status == 200}
    posted = {o.tag.rstrip("*") for o in load.outcomes}
    dup_posts = [o for o in load.outcomes if o.tag.endswith("*")]
    return {
        "unique_sids_posted": len(posted),
        "acked": len(acked),
        "stored": len(stored),
        "lost": len(acked - stored),
        "stored_unacked": len(stored - acked),
        "duplicate_rows": duplicated,
        "duplicate_posts": len(dup_posts),
        "duplicate_posts_acked": sum(1 for o in dup_posts if o.status == 200),
        "unprocessed": rows.filter(processed_at__isnull=True).count(),
    }


def summarize_step(spec: dict[str, Any], raw: dict[str, Any], p99_limit_ms: float) -> dict[str, Any]:
    load = LoadResult.from_json(raw["load"])
    outcomes = load.outcomes
    latencies = [o.done - o.intended for o in outcomes]
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.status != 200:
            key = str(o.status) if o.status else o.error.split(":", 1)[0]
            errors[key] = errors.get(key, 0) + 1
    span = max((o.intended for o in outcomes), default=0) - min((o.intended for o in outcomes), default=0)
    cpu = raw["cpu"]
    wall = max(load.finished - load.started, 1e-9)
    mine = sum(cpu.get(k, 0.0) for k in ("gunicorn", "celery", "postgres", "loadgen", "poller"))
    summary = {
        "step": spec["step"],
        "target": spec["target"],
        "rate": spec["rate"],
        "requests": len(outcomes),
        "achieved_rate": round(len(outcomes) / span, 1) if span else 0.0,
        "ok": sum(1 for o in outcomes if o.status == 200),
        "errors": errors,
        "latency_ms": latency_summary_ms(latencies),
        "generator_max_lag_ms": round(load.max_lag * 1000, 1),
        # CPU, in cores (CPU-seconds per wall second) over the load window.
        "cores": {k: round(cpu[k] / wall, 2) for k in cpu if k not in ("machine_busy", "machine_total")}
        | {
            "machine": round(cpu["machine_busy"] / wall, 2),
            "others": round(max(0.0, cpu["machine_busy"] - mine) / wall, 2),
        },
        "cpu_ms_per_request": {
            k: round(cpu[k] * 1000 / max(1, len(outcomes)), 2)
            for k in ("gunicorn", "postgres", "postgres_bench_db", "loadgen")
        },
    }
    summary["passed"] = (
        not errors
        and summary["latency_ms"]["p99"] < p99_limit_ms
        and len(outcomes) >= 0.99 * spec["rate"] * spec["seconds"]
    )
    return summary


def print_step(summary: dict[str, Any]) -> None:
    lat, cores = summary["latency_ms"], summary["cores"]
    extra = ""
    if "db" in summary:
        db = summary["db"]
        extra = f" lost={db['lost']} dup_rows={db['duplicate_rows']} dup_posts={db['duplicate_posts']}"
        extra += f" drain={summary['drain_seconds']:.1f}s"
    print(
        f"  step {summary['step']:3d} {summary['target']:7s} {summary['rate']:6.0f}/s "
        f"sent={summary['requests']:6d} ok={summary['ok']:6d} err={sum(summary['errors'].values()):4d} "
        f"p50={lat['p50']:7.1f} p95={lat['p95']:7.1f} p99={lat['p99']:7.1f} max={lat['max']:7.1f} ms "
        f"cores web={cores['gunicorn']:.2f} pg={cores['postgres']:.2f}({cores['postgres_bench_db']:.2f}) "
        f"celery={cores['celery']:.2f} "
        f"gen={cores['loadgen']:.2f} others={cores['others']:.2f} "
        f"{'PASS' if summary['passed'] else 'FAIL'}{extra}",
        flush=True,
    )


def run_webhook_step(
    stack: Stack,
    spec: dict[str, Any],
    extra_roots: dict[str, int] | None = None,
    after_load: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One webhook step, then wait for the worker to drain the queue, then compare the database with the
    acknowledgements. Also accounts the worker's and PostgreSQL's CPU per stored message over step + drain.
    Returns (summary, raw load result)."""
    worker_root = stack.services["celery"].proc.pid
    before = (tree_cpu_seconds(worker_root), tree_cpu_seconds(stack.postmaster_pid))
    raw = run_load(stack, spec, extra_roots)
    summary = summarize_step(spec, raw, stack.args.p99_ms)
    if after_load is not None:
        after_load()
    waited, left = drain(stack, timeout=stack.args.drain_timeout)
    worker_cpu = tree_cpu_seconds(worker_root) - before[0]
    postgres_cpu = tree_cpu_seconds(stack.postmaster_pid) - before[1]
    summary["drain_seconds"] = round(waited, 1)
    summary["pending_after_drain"] = left
    summary["db"] = db_check(spec["sid_prefix"], LoadResult.from_json(raw["load"]))
    db = summary["db"]
    stored = max(1, db["stored"])
    summary["per_message_cpu_ms_incl_drain"] = {
        "worker": round(worker_cpu * 1000 / stored, 2),
        "postgres_server": round(postgres_cpu * 1000 / stored, 2),
    }
    if db["lost"] or db["duplicate_rows"]:
        summary["passed"] = False
    return summary, raw


def ladder(stack: Stack) -> dict[str, Any]:
    """Webhook and bare-view steps interleaved (the i-th rate of each in turn), so both see the same machine.

    Each target climbs its own list of rates and stops after two consecutive failures.
    """
    steps: list[dict[str, Any]] = []
    failures = {"webhook": 0, "bare": 0}
    ladders = {"webhook": stack.args.rates, "bare": stack.args.bare_rates}
    for index in range(max(len(ladders["webhook"]), len(ladders["bare"]))):
        for target in ("webhook", "bare"):
            if failures[target] >= 2 or index >= len(ladders[target]):
                continue
            rate = ladders[target][index]
            spec = make_spec(stack, target=target, rate=rate, seconds=stack.args.step_seconds)
            if target == "webhook":
                summary, _ = run_webhook_step(stack, spec)
            else:
                summary = summarize_step(spec, run_load(stack, spec), stack.args.p99_ms)
            print_step(summary)
            steps.append(summary)
            failures[target] = 0 if summary["passed"] else failures[target] + 1
            time.sleep(stack.args.pause)
    sustained = {}
    for target in ("webhook", "bare"):
        best, misses = 0.0, 0
        for step in (s for s in steps if s["target"] == target):
            if step["passed"]:
                best, misses = max(best, step["rate"]), 0
            else:
                misses += 1
                if misses >= 2:
                    break
        sustained[target] = best
    ratio = sustained["webhook"] / sustained["bare"] if sustained["bare"] else 0.0
    print(
        f"  -> sustained at p99<{stack.args.p99_ms:.0f}ms: webhook {sustained['webhook']:.0f}/s, "
        f"bare {sustained['bare']:.0f}/s, ratio {ratio:.0%}",
        flush=True,
    )
    return {"steps": steps, "sustained": sustained, "ratio": ratio}


def end_to_end(stack: Stack, rate: float) -> dict[str, Any]:
    """Webhook → visible in the inbox selector, at a fixed rate; plus webhook → stored and → processed."""
    args = stack.args
    spec = make_spec(
        stack,
        target="webhook",
        rate=rate,
        seconds=args.e2e_seconds,
        senders="round_robin",
        body="e2e",
        dup_fraction=0.0,
        dup_pair_fraction=0.0,
    )
    poll_out = stack.run_dir / f"step-{spec['step']:03d}.poller.json"
    stop_file = stack.run_dir / f"step-{spec['step']:03d}.stop"
    poller = subprocess.Popen(
        [
            PYTHON, "-m", "bench.sms_ingest", "poller", "--office-id", str(stack.office_id),
            "--out", str(poll_out), "--stop-file", str(stop_file), "--poll-ms", str(args.poll_ms),
            "--slack", str(args.poll_slack), "--max-seconds", str(args.e2e_seconds + 120),
        ],
        cwd=REPO,
        env=stack.env,
    )  # fmt: skip
    time.sleep(2)  # let the poller import Django and open its connection

    def stop_poller() -> None:
        time.sleep(3)  # a few more polls, one of them with the 10 s look-back
        stop_file.touch()
        poller.wait(timeout=60)

    summary, raw = run_webhook_step(stack, spec, {"poller": poller.pid}, after_load=stop_poller)
    load = LoadResult.from_json(raw["load"])

    polled = json.loads(poll_out.read_text())
    seen = {int(k): v for k, v in polled["seen"].items()}
    intended = {}
    for o in load.outcomes:
        if o.status == 200:
            intended[seq_of(o.tag or "")] = o.intended
    visible = [seen[s] - t for s, t in intended.items() if s in seen]

    from messages.models import Message

    stored_at, processed_at = [], []
    for sid, created, processed in Message.objects.filter(
        provider_sid__startswith=spec["sid_prefix"]
    ).values_list("provider_sid", "created_at", "processed_at"):
        t = intended.get(seq_of(sid or ""))
        if t is None:
            continue
        stored_at.append(created.timestamp() - t)
        if processed is not None:
            processed_at.append(processed.timestamp() - t)
    summary["e2e"] = {
        "rate": rate,
        "messages": len(intended),
        "seen_in_inbox": len(visible),
        "never_seen": len(intended) - len(visible),
        "visible_ms": latency_summary_ms(visible),
        "stored_ms": latency_summary_ms(stored_at),
        "processed_ms": latency_summary_ms(processed_at),
        "polls": polled["polls"],
        "mean_poll_ms": round(polled["poll_seconds"] * 1000 / max(1, polled["polls"]), 1),
        "rows_per_poll": round(polled["rows_read"] / max(1, polled["polls"]), 1),
    }
    e2e = summary["e2e"]
    print_step(summary)
    print(
        f"  -> e2e {rate:.0f}/s x {args.e2e_seconds:.0f}s: visible in inbox "
        f"p50={e2e['visible_ms']['p50']:.0f} p95={e2e['visible_ms']['p95']:.0f} "
        f"p99={e2e['visible_ms']['p99']:.0f} ms (seen {e2e['seen_in_inbox']}/{e2e['messages']}); "
        f"processed by worker p50={e2e['processed_ms']['p50']:.0f} p95={e2e['processed_ms']['p95']:.0f} "
        f"p99={e2e['processed_ms']['p99']:.0f} ms; "
        f"poll {e2e['mean_poll_ms']} ms, {e2e['rows_per_poll']} rows",
        flush=True,
    )
    return summary


def configuration(stack: Stack) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        sync_commit = cursor.fetchone()[0]
    import redis

    client = redis.Redis.from_url(stack.args.redis_url)
    redis_version = client.info("server")["redis_version"]
    client.close()
    args = stack.args
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_start": loadavg(),
        **software_versions(),
        "postgresql": pg_version,
        "postgresql_synchronous_commit": sync_commit,
        "redis": redis_version,
        "gunicorn": " ".join(gunicorn_argv(args)[2:]),
        "celery": " ".join(celery_argv(args)[1:]),
        "database": args.database,
        "redis_url": args.redis_url,
        "connections": args.connections,
        "step_seconds": args.step_seconds,
        "rates": args.rates,
        "repeats": args.repeats,
        "p99_ms": args.p99_ms,
        "senders": args.senders,
        "new_sender_fraction": args.new_sender_fraction,
        "dup_fraction": args.dup_fraction,
        "dup_pair_fraction": args.dup_pair_fraction,
        "e2e": f"{args.e2e_rates}/s x {args.e2e_seconds}s x {args.e2e_repeats}, poll every {args.poll_ms} ms",
    }


def run_main(args: argparse.Namespace) -> int:
    # A SIGTERM (timeout, Ctrl-C from a wrapper) still stops the services and drops the database.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ.update(bench_env(args))
    run_id = uuid.uuid4().hex[:8]
    run_dir = Path(args.results_dir) / f"sms_ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(args=args, env=bench_env(args), run_dir=run_dir, run_id=run_id)
    report: dict[str, Any] = {}
    try:
        setup_database(stack)
        start_stack(stack)
        report["configuration"] = configuration(stack)
        print("configuration:")
        for key, value in report["configuration"].items():
            print(f"  {key}: {value}")
        print(
            f"first contact: every one of {args.senders} senders texts once at {args.warmup_rate:.0f}/s",
            flush=True,
        )
        warm = make_spec(
            stack,
            target="webhook",
            rate=args.warmup_rate,
            seconds=args.senders / args.warmup_rate,
            senders="each_once",
        )
        first_contact, _ = run_webhook_step(stack, warm)
        print_step(first_contact)
        report["first_contact"] = first_contact

        report["ladders"] = []
        for repeat in range(args.repeats):
            print(f"ladder {repeat + 1}/{args.repeats} (webhook and bare view interleaved):", flush=True)
            report["ladders"].append(ladder(stack))

        report["e2e"] = []
        for rate in args.e2e_rates:
            for repeat in range(args.e2e_repeats):
                print(f"end-to-end at {rate:g}/s, {repeat + 1}/{args.e2e_repeats}:", flush=True)
                report["e2e"].append(end_to_end(stack, rate))

        report["summary"] = summarize(report)
        print_summary(report["summary"])
    finally:
        for service in stack.services.values():
            service.stop()
        write_json(run_dir / "report.json", report)
        print(f"raw results: {run_dir.relative_to(REPO) if run_dir.is_relative_to(REPO) else run_dir}")
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            database_drop(args.database)
            redis_flush(args.redis_url)
    return 0


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    ladders = report["ladders"]
    webhook = [lad["sustained"]["webhook"] for lad in ladders]
    bare = [lad["sustained"]["bare"] for lad in ladders]
    ratios = [lad["ratio"] for lad in ladders]
    checked = [s for lad in ladders for s in lad["steps"] if s["target"] == "webhook"]
    checked += [report["first_contact"], *report["e2e"]]
    e2e_by_rate: dict[float, list[dict[str, Any]]] = {}
    for run in report["e2e"]:
        e2e_by_rate.setdefault(run["rate"], []).append(run)
    e2e = {}
    for rate, runs in e2e_by_rate.items():
        e2e[f"{rate:g}"] = {
            "runs": len(runs),
            "sent": sum(r["requests"] for r in runs),
            "acknowledged": sum(r["ok"] for r in runs),
            "webhook_ms_median": {
                q: median([r["latency_ms"][q] for r in runs]) for q in ("p50", "p95", "p99")
            },
            **{
                f"{kind}_ms_median": {
                    q: median([r["e2e"][f"{kind}_ms"][q] for r in runs]) for q in ("p50", "p95", "p99")
                }
                for kind in ("visible", "processed")
            },
            "never_seen": sum(r["e2e"]["never_seen"] for r in runs),
        }
    return {
        "cpu_ms_per_message": cpu_per_message(ladders),
        "webhook_sustained_per_s": webhook,
        "bare_sustained_per_s": bare,
        "ratios": [round(r, 3) for r in ratios],
        "median_webhook_per_s": median(webhook),
        "median_bare_per_s": median(bare),
        "median_ratio": round(median(ratios), 3) if ratios else None,
        "acked_total": sum(s["db"]["acked"] for s in checked),
        "lost_total": sum(s["db"]["lost"] for s in checked),
        "duplicate_rows_total": sum(s["db"]["duplicate_rows"] for s in checked),
        "duplicate_posts_total": sum(s["db"]["duplicate_posts"] for s in checked),
        "duplicate_posts_acked": sum(s["db"]["duplicate_posts_acked"] for s in checked),
        "stored_unacked_total": sum(s["db"]["stored_unacked"] for s in checked),
        "unprocessed_total": sum(s["db"]["unprocessed"] for s in checked),
        "e2e": e2e,
    }


def cpu_per_message(ladders: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Medians over all ladder steps of the CPU each request cost, in ms: steadier than rates on a shared
    machine, because other people's load changes how long a request waits, not how much CPU it needs."""
    result: dict[str, dict[str, float]] = {}
    for target in ("webhook", "bare"):
        steps = [s for lad in ladders for s in lad["steps"] if s["target"] == target]
        if not steps:
            continue
        figures = {
            "web (gunicorn)": median([s["cpu_ms_per_request"]["gunicorn"] for s in steps]),
            "load generator": median([s["cpu_ms_per_request"]["loadgen"] for s in steps]),
        }
        if target == "webhook":
            figures["postgres (gunicorn's backends)"] = median(
                [s["cpu_ms_per_request"]["postgres_bench_db"] for s in steps]
            )
            figures["worker (celery), step + drain"] = median(
                [s["per_message_cpu_ms_incl_drain"]["worker"] for s in steps]
            )
            figures["postgres server (all), step + drain"] = median(
                [s["per_message_cpu_ms_incl_drain"]["postgres_server"] for s in steps]
            )
        result[target] = {k: round(v, 2) for k, v in figures.items()}
    return result


def print_summary(summary: dict[str, Any]) -> None:
    print("summary:")
    for target, figures in summary.get("cpu_ms_per_message", {}).items():
        print(
            f"  CPU per {target} request, ms (median of steps): "
            + ", ".join(f"{k} {v}" for k, v in figures.items())
        )
    print(
        f"  sustained at p99 target, per ladder: webhook {summary['webhook_sustained_per_s']} /s, "
        f"bare {summary['bare_sustained_per_s']} /s, ratio {summary['ratios']}"
    )
    if summary["median_ratio"] is not None:
        print(
            f"  median: webhook {summary['median_webhook_per_s']:.0f}/s, "
            f"bare {summary['median_bare_per_s']:.0f}/s, ratio {summary['median_ratio']:.1%}"
        )
    print(
        f"  database: {summary['acked_total']} SIDs acknowledged, lost {summary['lost_total']}, "
        f"duplicate rows {summary['duplicate_rows_total']}; {summary['duplicate_posts_total']} deliberate "
        f"duplicate posts ({summary['duplicate_posts_acked']} acknowledged, all collapsed by SID); "
        f"stored but not acknowledged {summary['stored_unacked_total']}; "
        f"unprocessed {summary['unprocessed_total']}"
    )
    for rate, e2e in summary["e2e"].items():
        w, v, p = e2e["webhook_ms_median"], e2e["visible_ms_median"], e2e["processed_ms_median"]
        print(
            f"  e2e at {rate}/s ({e2e['runs']} run(s), {e2e['acknowledged']}/{e2e['sent']} acknowledged): "
            f"webhook p50={w['p50']:.0f} p95={w['p95']:.0f} p99={w['p99']:.0f} ms; "
            f"visible in inbox p50={v['p50']:.0f} p95={v['p95']:.0f} p99={v['p99']:.0f} ms; "
            f"processed p50={p['p50']:.0f} p95={p['p95']:.0f} p99={p['p99']:.0f} ms; "
            f"never seen {e2e['never_seen']}"
        )


def parse_rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sms_ingest", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="set up, run the ladder, the duplicate checks and the end-to-end test")
    run.add_argument("--port", type=int, default=8765)
    run.add_argument("--database", default="civicdesk_bench_sms")
    run.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    run.add_argument("--workers", type=int, default=WORKERS, help="gunicorn worker processes")
    run.add_argument("--worker-class", default=WORKER_CLASS, choices=["gthread", "sync"])
    run.add_argument("--threads", type=int, default=THREADS, help="threads per gunicorn worker (gthread)")
    run.add_argument("--keep-alive", type=int, default=5, help="gunicorn --keep-alive seconds")
    run.add_argument("--celery-concurrency", type=int, default=1)
    run.add_argument("--connections", type=int, default=64, help="client keep-alive connections at most")
    run.add_argument(
        "--rates", type=parse_rates, default=parse_rates(WEBHOOK_RATES), help="webhook ladder, /s"
    )
    run.add_argument(
        "--bare-rates", type=parse_rates, default=parse_rates(BARE_RATES), help="bare-view ladder"
    )
    run.add_argument("--step-seconds", type=float, default=20.0)
    run.add_argument("--pause", type=float, default=2.0, help="seconds between steps")
    run.add_argument("--repeats", type=int, default=3, help="ladders to run (medians are reported)")
    run.add_argument("--p99-ms", type=float, default=200.0)
    run.add_argument("--senders", type=int, default=2000, help="constituents, each texting once first")
    run.add_argument("--warmup-rate", type=float, default=25.0, help="rate of the first-contact step, /s")
    run.add_argument("--new-sender-fraction", type=float, default=0.1, help="ladder texts from new senders")
    run.add_argument("--dup-fraction", type=float, default=0.01, help="posts re-sent 0.05-2 s later")
    run.add_argument("--dup-pair-fraction", type=float, default=0.005, help="posts sent twice at once")
    run.add_argument("--drain-timeout", type=float, default=1800.0, help="wait for the worker, seconds")
    run.add_argument("--e2e-rates", type=parse_rates, default=parse_rates("100"), help="end-to-end rates, /s")
    run.add_argument("--e2e-seconds", type=float, default=300.0)
    run.add_argument("--e2e-repeats", type=int, default=1, help="end-to-end runs per rate")
    run.add_argument("--poll-ms", type=int, default=100)
    run.add_argument("--poll-slack", type=float, default=1.0, help="seconds of activity each poll looks back")
    run.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    run.add_argument("--keep-db", action="store_true", help="keep the database and Redis data afterwards")

    report = sub.add_parser("report", help="print the summary of a finished run again")
    report.add_argument("report_json", type=Path, help="bench/results/<run>/report.json")

    loadgen = sub.add_parser("loadgen", help="(internal) one step of load, from a spec file")
    loadgen.add_argument("--spec", type=Path, required=True)

    poller = sub.add_parser("poller", help="(internal) the end-to-end inbox poller")
    poller.add_argument("--office-id", type=int, required=True)
    poller.add_argument("--out", type=Path, required=True)
    poller.add_argument("--stop-file", type=Path, required=True)
    poller.add_argument("--poll-ms", type=int, default=100)
    poller.add_argument("--slack", type=float, default=1.0)
    poller.add_argument("--max-seconds", type=float, default=600.0)

    args = parser.parse_args(argv)
    if args.command == "loadgen":
        loadgen_main(args.spec)
        return 0
    if args.command == "report":
        data = json.loads(args.report_json.read_text())
        print_summary(summarize(data))
        return 0
    if args.command == "poller":
        poller_main(
            office_id=args.office_id,
            out=args.out,
            stop_file=args.stop_file,
            poll_ms=args.poll_ms,
            slack=args.slack,
            max_seconds=args.max_seconds,
        )
        return 0
    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
