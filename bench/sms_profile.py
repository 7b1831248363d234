"""An inbound text's cost in process: CPU per webhook through the WSGI handler, beside the bare view.

No server and no network: each request is a WSGI environ handed to Django's handler, as gunicorn would hand
it, so the figures are the application's own cost. Also reports the PostgreSQL backend's CPU per webhook (read
from /proc for the connection's backend) and the statements of one webhook.

Uses the machine's PostgreSQL (a scratch database, created and dropped) and Redis, with ``bench.settings``.

Run:  .venv/bin/python bench/sms_profile.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import print_in_scratch_database  # noqa: E402

DATABASE = "civicdesk_bench_smsprof"
OFFICE_NUMBER = "+14155550100"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    parser.add_argument(
        "--profile", type=int, default=0, help="also print the top N functions by CPU (cProfile)"
    )
    parser.add_argument("--sort", default="tottime", help="the profile's order (tottime, cumulative, ...)")
    parser.add_argument(
        "--sql",
        action="append",
        default=[],
        help="SQL to run after migrating, before measuring (what-if experiments, e.g. dropping an index)",
    )
    args = parser.parse_args()
    return print_in_scratch_database(
        lambda: _measure(args), server=args.server, database=DATABASE, redis_url=args.redis_url
    )


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messages.twilio.signatures import sign
    from offices.models import Office, OfficePhoneNumber

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        for statement in args.sql:
            cursor.execute(statement)
    office = Office.objects.create(name="Profile", slug="profile", official_name="P", official_title="Rep")
    OfficePhoneNumber.objects.create(office=office, e164=OFFICE_NUMBER)
    app = get_wsgi_application()
    path, bare_path = "/webhooks/twilio/sms/", "/bench/bare-twiml/"

    def environ(url_path: str, params: dict[str, str], signature: str) -> dict[str, Any]:
        body = urlencode(params).encode()
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": url_path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8765",
            "HTTP_HOST": "127.0.0.1:8765",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_TWILIO_SIGNATURE": signature,
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }

    def webhook(seq: int) -> dict[str, Any]:
        params = {
            "MessageSid": f"SM{seq:032x}",
            "AccountSid": settings.TWILIO_ACCOUNT_SID,
            "From": f"+1415600{seq % args.senders:04d}",
            "To": OFFICE_NUMBER,
            "Body": "Please vote for H.R. 1234. It matters to my family.",
            "NumMedia": "0",
            "FromCity": "SAN FRANCISCO",
            "FromState": "CA",
            "FromZip": "94103",
            "FromCountry": "US",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        return environ(
            path, params, sign(settings.PUBLIC_BASE_URL + path, params, settings.TWILIO_AUTH_TOKEN)
        )

    def run(environs: list[dict[str, Any]]) -> list[float]:
        cpu = []
        for env in environs:
            started = time.process_time()
            for _chunk in app(env, _start_response):  # type: ignore[arg-type]  # no write(): nothing uses it
                pass
            cpu.append((time.process_time() - started) * 1000)
        return cpu

    def backend_cpu_seconds() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    run([webhook(seq) for seq in range(args.senders)])  # every sender's first text: the slow path, warm-up
    timed = [webhook(args.senders + seq) for seq in range(args.requests)]
    pg_before = backend_cpu_seconds()
    webhook_cpu = run(timed)
    pg_cpu = (backend_cpu_seconds() - pg_before) * 1000 / args.requests
    bare_cpu = run([environ(bare_path, {"Body": "x"}, "") for _ in range(args.requests)])
    with CaptureQueriesContext(connection) as queries:
        run([webhook(10**9)])
    statements = [q["sql"][:80] for q in queries.captured_queries]  # before anything else runs
    if args.profile:
        import cProfile
        import pstats

        profiled = [webhook(2 * 10**9 + seq) for seq in range(args.requests)]  # signed outside the profile
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        run(profiled)
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(args.sort).print_stats(args.profile)
    return {
        "requests": args.requests,
        "webhook_cpu_ms": {"median": round(statistics.median(webhook_cpu), 3)},
        "bare_view_cpu_ms": {"median": round(statistics.median(bare_cpu), 3)},
        "postgres_backend_cpu_ms_per_webhook": round(pg_cpu, 3),
        "statements_per_webhook": statements,
        "prepared_statements": settings.DATABASE_PREPARED_STATEMENTS,
        "loadavg": os.getloadavg()[0],
    }


def _start_response(status: str, headers: list[tuple[str, str]]) -> None:
    if not status.startswith("20"):
        raise RuntimeError(f"unexpected response {status}")


if __name__ == "__main__":
    sys.exit(main())
