"""The PostgreSQL floor of storing an inbound text: server CPU per text, one per statement or many at once.

The question it answers: could the intake reach half the bare view's rate on this machine by writing texts
in batches (group commit), instead of one statement per webhook? It measures the PostgreSQL backend's CPU
(from /proc) per text for

- ``intake``: the production intake statement (``messages.services.intake``), one text per statement,
  through ``message_receive`` exactly as the webhook calls it;
- ``batch-N``: the least a batched intake could do for returning senders: one statement that finds each
  text's constituent and open thread, locks the thread, inserts the messages ``ON CONFLICT (provider_sid)
  DO NOTHING`` and updates the threads' inbox summaries, for N texts from N different senders. No SID
  check, no new constituents or threads, no hints: an optimistic lower bound, not an implementation.

Uses the machine's PostgreSQL (a scratch database, created, migrated and dropped) with ``bench.settings``.

Run:  .venv/bin/python bench/sms_write_floor.py [--texts 2048] [--senders 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import print_in_scratch_database  # noqa: E402

DATABASE = "civicdesk_bench_writefloor"
OFFICE_NUMBER = "+14155550100"
BODY = "Please vote for H.R. 1234. It matters to my family."
BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2048, help="texts per measurement")
    parser.add_argument("--senders", type=int, default=2000)
    parser.add_argument("--history", type=int, default=10, help="messages per thread stored beforehand")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per variant (median reported)")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    return print_in_scratch_database(
        lambda: _measure(args), server=args.server, database=DATABASE, redis_url=args.redis_url
    )


def _backend_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) * 1000 / os.sysconf("SC_CLK_TCK")


def _per_text(pid: int, texts: int, work: Callable[[], None]) -> float:
    before = _backend_cpu_ms(pid)
    work()
    return (_backend_cpu_ms(pid) - before) / texts


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from common.rawsql import EXPLICIT_PREPARE_ONLY
    from constituents.models import Constituent
    from messages.models import Conversation, Message
    from messages.services.intake import message_receive
    from messages.twilio.payloads import parse_inbound_sms
    from offices.models import Office, OfficePhoneNumber

    call_command("migrate", verbosity=0)
    office = Office.objects.create(name="Floor", slug="floor", official_name="F", official_title="Rep")
    OfficePhoneNumber.objects.create(office=office, e164=OFFICE_NUMBER)
    phones = [f"+1415600{i:04d}" for i in range(args.senders)]
    constituents = Constituent.objects.bulk_create(Constituent(office=office, phone=p) for p in phones)
    threads = Conversation.objects.bulk_create(
        Conversation(office=office, constituent=c) for c in constituents
    )
    # Some history, so that the tables are not tiny when the statements are planned (a tiny table's generic
    # plan scans it instead of using its index, and stays cached until the next ANALYZE).
    Message.objects.bulk_create(
        (
            Message(
                office=office,
                conversation=thread,
                direction="inbound",
                channel="sms",
                body=BODY,
                provider_sid=f"SM{'f' * 24}{n:08x}",
                status="received",
            )
            for n, thread in enumerate(threads * args.history)
        ),
        batch_size=2000,
    )

    def analyze() -> None:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    with connection.cursor() as cursor:
        # All the work in the one backend measured: no autovacuum worker flushing the GIN index's pending
        # list (or anything else) on its behalf, unseen. Each round starts with a fresh ANALYZE instead.
        for model in (Message, Conversation, Constituent):
            cursor.execute(f"ALTER TABLE {model._meta.db_table} SET (autovacuum_enabled = false)")
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])

    seq = iter(range(1, 10**9))

    def intake() -> None:
        for i in range(args.texts):
            sms = parse_inbound_sms(
                {
                    "MessageSid": f"SM{next(seq):032x}",
                    "AccountSid": "AC" + "b" * 32,
                    "From": phones[i % len(phones)],
                    "To": OFFICE_NUMBER,
                    "Body": BODY,
                    "NumMedia": "0",
                }
            )
            message_receive(sms=sms)

    raw = connection.connection  # the same backend, so one pid counts both variants
    sql = _batch_sql(Message._meta.db_table, Conversation._meta.db_table, Constituent._meta.db_table)

    def batches(size: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, args.texts - args.texts % size, size):
                chunk = [phones[(start + j) % len(phones)] for j in range(size)]
                sids = [f"SM{next(seq):032x}" for _ in chunk]
                row = raw.execute(
                    sql,
                    {"office": office.pk, "sids": sids, "phones": chunk, "bodies": [BODY] * size},
                    prepare=True,
                ).fetchone()
                if row is None or row[0] != size:
                    raise RuntimeError(f"the batch stored {row} of {size} texts")

        return run

    if raw.prepare_threshold is None:  # Django's default, under which psycopg ignores prepare=True
        raw.prepare_threshold = EXPLICIT_PREPARE_ONLY
    for work in (intake, batches(8)):  # warm the caches and both prepared statements
        _per_text(pid, args.texts, work)
    variants: list[tuple[str, Callable[[], None], int]] = [("intake", intake, args.texts)]
    variants += [(f"batch-{n}", batches(n), args.texts - args.texts % n) for n in BATCH_SIZES]
    runs: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeats):  # round robin: the GIN index's occasional pending-list flush, and the
        for name, work, texts in variants:  # machine's noise, fall on every variant alike
            analyze()  # what autovacuum would do as the tables grow; the prepared statements are replanned
            work()  # (five custom plans, then the generic one): settle before measuring
            runs[name].append(_per_text(pid, texts, work))
    results = {name: round(statistics.median(values), 3) for name, values in runs.items()}
    return {
        "postgres_backend_cpu_ms_per_text": results,
        "texts_per_measurement": args.texts,
        "senders": args.senders,
        "history_messages": args.senders * args.history,
        "repeats": args.repeats,
        "synchronous_commit": _setting(connection, "synchronous_commit"),
        "loadavg": os.getloadavg()[0],
    }


def _setting(connection: Any, name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return str(cursor.fetchone()[0])


def _batch_sql(messages: str, conversations: str, constituents: str) -> str:
    """N returning senders' texts in one statement: lookups by index (LATERAL keeps the generic plan on
    nested index scans), thread locks, the message inserts and the inbox summaries."""
    return f"""
WITH input AS (
  SELECT * FROM unnest(%(sids)s::text[], %(phones)s::text[], %(bodies)s::text[]) AS i(sid, phone, body)
), t AS (
  SELECT i.sid, i.phone, i.body, v.id AS thread_id FROM input i
  CROSS JOIN LATERAL (
    SELECT k.id FROM {constituents} k WHERE k.office_id = %(office)s AND k.phone = i.phone AND k.phone <> ''
  ) k
  CROSS JOIN LATERAL (
    SELECT v.id FROM {conversations} v WHERE v.constituent_id = k.id AND v.status <> 'closed' FOR UPDATE
  ) v
), m AS (
  INSERT INTO {messages} (office_id, conversation_id, direction, channel, body, provider_sid, status,
    error_message, from_number, to_number, idempotency_key, details, created_at, send_attempts)
  SELECT %(office)s, thread_id, 'inbound', 'sms', body, sid, 'received', '', phone, '{OFFICE_NUMBER}', '',
    '{{}}'::jsonb, now(), 0 FROM t
  ON CONFLICT (provider_sid) DO NOTHING RETURNING id, conversation_id, body
), u AS (
  UPDATE {conversations} v SET last_activity_at = GREATEST(v.last_activity_at, now()),
    last_message_preview = left(m.body, 160), last_message_channel = 'sms', last_inbound_at = now()
  FROM m WHERE v.id = m.conversation_id RETURNING v.id
)
SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM u)
"""  # noqa: S608


if __name__ == "__main__":
    sys.exit(main())
