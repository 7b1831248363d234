"""Inbox benchmark: the staff inbox over one office with a million messages.

Data: one office with 1,000,000 messages in 200,000 conversations of 100,000 constituents (plus a small second
office, so every query really filters by office), 30 tags (one on exactly 40,000 conversations), 8 queues and
20 staff. Generated in Python and loaded with ``COPY`` (the message and conversation indexes are dropped for
the load and rebuilt after it), then ``VACUUM ANALYZE``. The database is the machine's PostgreSQL, in a
dedicated database (``civicdesk_bench_inbox``) that is kept between runs (``--regenerate`` rebuilds it).

Measurement: server time of whole requests, in process, through Django's test client with ``bench.settings``
(DEBUG off, every middleware, sessions in the database, the rail counts cached in the machine's Redis): the
clock starts before the request enters the handler and stops when the rendered response comes back, so it
includes authentication, the membership check, selectors, template rendering and every query, and excludes
only the network. Each scenario runs ``--warmup`` unmeasured requests, then ``--requests`` measured ones,
sequentially; we report p50, p95 and max. A bare view (empty TwiML) measured the same way in the same run is
the floor of this stack.

Run:  .venv/bin/python -m bench.inbox            (generates the data on the first run, ~5 minutes)
      .venv/bin/python -m bench.inbox --requests 100 --regenerate
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/civicdesk_bench_inbox"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"

OFFICE_SLUG = "bench-inbox"
N_CONSTITUENTS = 100_000
N_CONVERSATIONS = 200_000
N_MESSAGES = 1_000_000
TAGGED_CONVERSATIONS = 40_000  # conversations carrying the "Health care" tag
PAGE_SIZE = 50
DEEP_PAGE = 400

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Margaret",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenneth",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Dorothy",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "Ronald",
    "Stephanie",
    "Edward",
    "Rebecca",
    "Jason",
    "Sharon",
    "Jeffrey",
    "Laura",
    "Ryan",
    "Cynthia",
    "Jacob",
    "Kathleen",
    "Gary",
    "Amy",
    "Nicholas",
    "Angela",
    "Eric",
    "Shirley",
    "Jonathan",
    "Anna",
    "Stephen",
    "Brenda",
    "Larry",
    "Pamela",
    "Justin",
    "Emma",
    "Scott",
    "Nicole",
    "Brandon",
    "Helen",
    "Benjamin",
    "Samantha",
    "Samuel",
    "Katherine",
    "Gregory",
    "Christine",
    "Alexander",
    "Debra",
    "Frank",
    "Rachel",
    "Patrick",
    "Carolyn",
    "Raymond",
    "Janet",
    "Jack",
    "Catherine",
    "Dennis",
    "Maria",
    "Jerry",
    "Heather",
    "Tyler",
    "Diane",
    "Aaron",
    "Ruth",
    "Jose",
    "Julie",
    "Adam",
    "Olivia",
    "Nathan",
    "Joyce",
    "Henry",
    "Virginia",
    "Douglas",
    "Victoria",
    "Zachary",
    "Kelly",
    "Peter",
    "Lauren",
    "Kyle",
    "Christina",
    "Ethan",
    "Joan",
    "Walter",
    "Evelyn",
    "Noah",
    "Judith",
    "Jeremy",
    "Megan",
    "Christian",
    "Andrea",
    "Keith",
    "Cheryl",
    "Roger",
    "Hannah",
    "Terry",
    "Jacqueline",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Jimenez",
    "Powell",
    "Jenkins",
    "Perry",
    "Russell",
    "Sullivan",
    "Bell",
    "Coleman",
    "Butler",
    "Henderson",
    "Barnes",
    "Gonzales",
    "Fisher",
    "Vasquez",
    "Simmons",
    "Romero",
    "Jordan",
    "Patterson",
    "Alexander",
    "Hamilton",
    "Graham",
    "Reynolds",
    "Griffin",
    "Wallace",
    "Moreno",
    "West",
    "Cole",
    "Hayes",
    "Bryant",
    "Herrera",
    "Gibson",
    "Ellis",
    "Tran",
    "Medina",
    "Aguilar",
    "Stevens",
    "Murray",
    "Ford",
]
# Topics with their tag and the words constituents use for them; chosen with Zipf-like weights, so some words
# are common (thousands of messages) and some rare.
TOPICS = [
    ("Health care", "my medicare card has not arrived and the clinic wants payment for the prescription"),
    ("Housing", "our landlord raised the rent and the apartment heating is broken again this winter"),
    ("Veterans", "my father is a veteran and his disability benefits claim has been pending for months"),
    ("Immigration", "my wife needs help with her visa interview and the green card application"),
    ("Social Security", "the social security office cut my retirement check without any letter"),
    ("Passports", "I need my passport renewed before my trip next month and the appointment is full"),
    ("Environment", "please support the clean water bill and protect the wetlands near the river"),
    ("Transportation", "the potholes on main street are dangerous and the bus route was cancelled"),
    ("Education", "the school district cut the reading program and class sizes are too large"),
    ("Taxes", "the irs has not processed my refund and I cannot reach anyone by phone"),
    ("Small business", "my restaurant applied for the small business loan and heard nothing back"),
    ("Public safety", "there have been break-ins on our block and we want more patrols at night"),
    ("Agriculture", "drought relief for farmers in the valley is late and the crop insurance denied us"),
    ("Energy", "the utility bill doubled and the solar rebate still has not been paid"),
    ("Broadband", "we still have no internet in the rural part of the county and the grant stalled"),
]
OPENERS = ["Hi,", "Hello,", "Good morning.", "Dear office,", "Hey there.", "Hi, it's me again.", ""]
CLOSERS = [
    "Thank you.",
    "Please call me back.",
    "Any help is appreciated.",
    "Thanks!",
    "",
    "Who can I talk to?",
]
REPLIES = [
    "Thanks for reaching out. A caseworker will call you this week.",
    "We have contacted the agency on your behalf and will update you.",
    "Thank you for sharing your views with the office.",
    "Could you send your full address so we can confirm you live in the district?",
    "We received your message and are looking into it.",
]
NOTES = [
    "Called back, left a voicemail.",
    "Sent privacy release form.",
    "Agency says 2-3 weeks.",
    "Escalated.",
]


def _configure_environment(args: argparse.Namespace) -> None:
    if args.no_parallel_query:
        # A LIMIT 51 query gains nothing from parallel workers and, on a small shared box, waits for them.
        os.environ["PGOPTIONS"] = "-c max_parallel_workers_per_gather=0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ.setdefault("CELERY_DEFAULT_QUEUE", "civicdesk-bench-inbox")


def _ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- data -------------------------------------------------------------------------------------------------


def _phone(i: int) -> str:
    """Unique per office for i < 800,000: area code 2xx from i // 10,000, line number from i % 10,000."""
    return f"+1{200 + i // 10_000:03d}555{i % 10_000:04d}"


def _copy(cursor: Any, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> int:
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _required_columns_check(cursor: Any, table: str, columns: list[str]) -> None:
    """Fail clearly if a migration added a NOT NULL column without a default that this generator omits."""
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL AND is_generated = 'NEVER'",
        (table,),
    )
    missing = {r[0] for r in cursor.fetchall()} - set(columns) - {"id"}
    if missing:
        raise SystemExit(
            f"bench/inbox.py does not fill {table}.{sorted(missing)}: teach the generator about them"
        )


def _drop_indexes(cursor: Any, table: str) -> list[str]:
    """Drop the table's non-constraint indexes for a fast load; return their definitions to rebuild."""
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        (table,),
    )
    rows = cursor.fetchall()
    for name, _ in rows:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def generate(args: argparse.Namespace) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from messages.models import Tag, TriageQueue
    from offices.models import Membership, Office, OfficePhoneNumber

    rng = random.Random(args.seed)
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE civicdesk_messages_message, civicdesk_messages_conversationtag, "
            "civicdesk_messages_conversationevent, civicdesk_messages_conversation, "
            "constituents_constituent, civicdesk_messages_tag, civicdesk_messages_triagequeue, "
            "offices_membership, offices_officephonenumber, "
            "offices_office, auth_user, django_session CASCADE"
        )
    User = get_user_model()
    with transaction.atomic():
        office = Office.objects.create(
            name="Office of Rep. Bench",
            slug=OFFICE_SLUG,
            official_name="Jordan Rivera",
            official_title="Representative",
            district_label="CA-12",
            time_zone="America/Los_Angeles",
        )
        other = Office.objects.create(
            name="Other office", slug="bench-other", official_name="X", official_title="Y"
        )
        OfficePhoneNumber.objects.create(office=office, e164="+14155550100")
        staff = []
        for i in range(20):
            user = User.objects.create_user(f"staff{i}", password="bench-password")  # noqa: S106
            Membership.objects.create(user=user, office=office, role="admin" if i == 0 else "staff")
            staff.append(user)
        tags = [Tag.objects.create(office=office, name=name) for name, _ in TOPICS]
        tags += [
            Tag.objects.create(office=office, name=f"Label {i}", kind="label") for i in range(30 - len(tags))
        ]
        queues = [TriageQueue.objects.create(office=office, name=f"Queue {i}") for i in range(8)]
        Tag.objects.create(office=other, name="Health care")
    staff_ids = [u.pk for u in staff]
    tag_ids = [t.pk for t in tags]
    queue_ids = [q.pk for q in queues]
    topic_weights = [1 / (rank + 1) for rank in range(len(TOPICS))]
    now = datetime.now(UTC)
    earliest = now - timedelta(days=730)

    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, for COPY
        dropped = {
            t: _drop_indexes(raw, t)
            for t in ("civicdesk_messages_message", "civicdesk_messages_conversation")
        }

        # Constituents: ids 1..N, phones unique within the office.
        constituent_columns = [
            "id",
            "office_id",
            "phone",
            "first_name",
            "last_name",
            "email",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "zip_code",
            "in_district",
            "preferred_language",
            "sms_consent",
            "carrier_city",
            "carrier_state",
            "carrier_zip",
            "created_at",
            "updated_at",
        ]
        _required_columns_check(raw, "constituents_constituent", constituent_columns)
        opted_out: set[int] = set()

        def constituents() -> Iterator[tuple[Any, ...]]:
            for i in range(1, N_CONSTITUENTS + 1):
                consent = "opted_out" if rng.random() < 0.03 else "implied"
                if consent == "opted_out":
                    opted_out.add(i)
                district = rng.choices([True, False, None], weights=[6, 1, 3])[0]
                at = earliest + timedelta(seconds=rng.uniform(0, 730 * 86400))
                yield (
                    i,
                    office.pk,
                    _phone(i),
                    rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES),
                    "",
                    "",
                    "",
                    "",
                    "CA",
                    f"9{rng.randint(4000, 6199):04d}",
                    district,
                    "en",
                    consent,
                    "",
                    "",
                    "",
                    at,
                    at,
                )

        n_constituents = _copy(raw, "constituents_constituent", constituent_columns, constituents())
        # A few constituents in the other office with the same phones (look-alike data).
        _copy(
            raw,
            "constituents_constituent",
            constituent_columns,
            (
                (
                    N_CONSTITUENTS + j,
                    other.pk,
                    _phone(j),
                    "Other",
                    "Person",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    None,
                    "en",
                    "implied",
                    "",
                    "",
                    "",
                    now,
                    now,
                )
                for j in range(1, 1001)
            ),
        )

        # Conversations: two per constituent; the older is closed, the newer open, pending, snoozed or closed.
        conversation_columns = [
            "id",
            "office_id",
            "constituent_id",
            "status",
            "assignee_id",
            "queue_id",
            "priority",
            "last_activity_at",
            "last_message_preview",
            "last_message_channel",
            "last_inbound_at",
            "staff_read_at",
            "snoozed_until",
            "first_response_at",
            "closed_at",
            "auto_ack_sent_at",
            "created_at",
        ]
        _required_columns_check(raw, "civicdesk_messages_conversation", conversation_columns)
        message_columns = [
            "id",
            "office_id",
            "conversation_id",
            "direction",
            "channel",
            "body",
            "provider_sid",
            "status",
            "error_code",
            "error_message",
            "from_number",
            "to_number",
            "sent_by_id",
            "idempotency_key",
            "num_segments",
            "duration_seconds",
            "details",
            "created_at",
            "sent_at",
            "status_updated_at",
            "processed_at",
            "send_attempts",
        ]
        _required_columns_check(raw, "civicdesk_messages_message", message_columns)

        messages_per_conversation = N_MESSAGES // N_CONVERSATIONS
        conversation_rows: list[tuple[Any, ...]] = []
        message_rows: list[tuple[Any, ...]] = []
        topic_of: dict[int, int] = {}
        message_id = 0
        for cid in range(1, N_CONVERSATIONS + 1):
            constituent_id = (cid - 1) % N_CONSTITUENTS + 1
            newer = cid > N_CONSTITUENTS
            status = (
                rng.choices(["open", "pending", "snoozed", "closed"], weights=[45, 8, 7, 40])[0]
                if newer
                else "closed"
            )
            start = earliest + timedelta(seconds=rng.uniform(0, 700 * 86400))
            if newer:
                start = max(start, now - timedelta(days=120)) + timedelta(seconds=rng.uniform(0, 100 * 86400))
            topic = rng.choices(range(len(TOPICS)), weights=topic_weights)[0]
            topic_of[cid] = topic
            at = start
            last: tuple[str, str, str] = ("", "", "")
            last_inbound = None
            first_response = None
            for k in range(messages_per_conversation):
                message_id += 1
                at = at + timedelta(minutes=rng.uniform(1, 2000))
                kind = rng.random()
                if k == 0 or kind < 0.45:
                    channel = rng.choices(["sms", "mms", "voicemail", "call"], weights=[80, 6, 8, 6])[0]
                    direction = "inbound"
                    if channel == "call":
                        body = ""
                    else:
                        words = TOPICS[topic][1].split()
                        cut = rng.randint(6, len(words))
                        body = " ".join(
                            x
                            for x in (rng.choice(OPENERS), " ".join(words[:cut]) + ".", rng.choice(CLOSERS))
                            if x
                        )
                        if channel == "voicemail":
                            body = f"Hi, this is {rng.choice(FIRST_NAMES)} calling. {body}"
                    last_inbound = at
                    status_value, sent_by = "received", None
                elif kind < 0.9:
                    channel, direction, body = "sms", "outbound", rng.choice(REPLIES)
                    status_value, sent_by = "delivered", rng.choice(staff_ids)
                    first_response = first_response or at
                else:
                    channel, direction, body = "note", "internal", rng.choice(NOTES)
                    status_value, sent_by = "received", rng.choice(staff_ids)
                details = '{"transcript_status": "completed"}' if channel == "voicemail" else "{}"
                message_rows.append(
                    (
                        message_id,
                        office.pk,
                        cid,
                        direction,
                        channel,
                        body,
                        None,
                        status_value,
                        None,
                        "",
                        "",
                        "",
                        sent_by,
                        "",
                        None,
                        rng.randint(10, 300) if channel in ("call", "voicemail") else None,
                        details,
                        at,
                        at if direction == "outbound" else None,
                        at,
                        at,
                        0,
                    )
                )
                last = (" ".join(body.split())[:160] or f"[{channel}]", channel, direction)
            snoozed_until = now + timedelta(days=rng.uniform(0.5, 10)) if status == "snoozed" else None
            closed_at = at + timedelta(hours=1) if status == "closed" else None
            assignee = rng.choice(staff_ids) if rng.random() < 0.55 else None
            queue = rng.choice(queue_ids) if rng.random() < 0.6 else None
            read = at if rng.random() < 0.7 else None
            conversation_rows.append(
                (
                    cid,
                    office.pk,
                    constituent_id,
                    status,
                    assignee,
                    queue,
                    rng.choices([0, 1, 2, 3], [5, 80, 12, 3])[0],
                    at,
                    last[0],
                    last[1],
                    last_inbound,
                    read,
                    snoozed_until,
                    first_response,
                    closed_at,
                    None,
                    start,
                )
            )
        n_conversations = _copy(
            raw, "civicdesk_messages_conversation", conversation_columns, iter(conversation_rows)
        )
        n_messages = _copy(raw, "civicdesk_messages_message", message_columns, iter(message_rows))
        del message_rows

        # Tags: "Health care" on exactly TAGGED_CONVERSATIONS conversations; other tags on others.
        health = tag_ids[0]
        tagged = rng.sample(range(1, N_CONVERSATIONS + 1), TAGGED_CONVERSATIONS)
        tagged_set = set(tagged)
        link_rows = [(cid, health, None, now) for cid in tagged]
        for cid in range(1, N_CONVERSATIONS + 1):
            if rng.random() < 0.7:
                tag = tag_ids[topic_of[cid]] if rng.random() < 0.8 else rng.choice(tag_ids[len(TOPICS) :])
                if tag != health:
                    link_rows.append((cid, tag, None, now))
            elif cid not in tagged_set and rng.random() < 0.1:
                link_rows.append((cid, rng.choice(tag_ids[1:]), None, now))
        n_links = _copy(
            raw,
            "civicdesk_messages_conversationtag",
            ["conversation_id", "tag_id", "added_by_id", "created_at"],
            iter(link_rows),
        )

        for definitions in dropped.values():
            for definition in definitions:
                raw.execute(definition)
        for table in (
            "constituents_constituent",
            "civicdesk_messages_conversation",
            "civicdesk_messages_message",
        ):
            raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )
    _vacuum_analyze()
    return {
        "constituents": n_constituents,
        "conversations": n_conversations,
        "messages": n_messages,
        "conversation_tags": n_links,
        "tagged_health_care": TAGGED_CONVERSATIONS,
        "opted_out": len(opted_out),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _vacuum_analyze() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        autocommit=True,
    ) as conn:
        conn.execute("VACUUM ANALYZE")


# --- measurement ------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], *, warmup: int, requests: int) -> tuple[list[float], list[float], Any]:
    """Wall-clock and this process's CPU seconds per call. CPU time shows the server's own cost apart from
    waiting for the CPU: on a shared machine the two differ (the run records the load average)."""
    result = None
    for _ in range(warmup):
        result = fn()
    wall, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu, result


def _report(
    results: list[dict[str, Any]], label: str, wall: list[float], cpu: list[float], **extra: Any
) -> None:
    from bench.common import latency_summary_ms, loadavg, median

    entry = {
        "scenario": label,
        **latency_summary_ms(wall),
        "cpu_p50": round(median(cpu) * 1000, 1),
        **extra,
        "loadavg": loadavg(),
    }
    results.append(entry)
    print(
        f"{label:55s} p50 {entry['p50']:6.1f}  p95 {entry['p95']:6.1f}  max {entry['max']:6.1f}  "
        f"cpu p50 {entry['cpu_p50']:5.1f} ms  " + "  ".join(f"{k} {v}" for k, v in extra.items()),
        flush=True,
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from messages.models import Conversation, Tag
    from messages.selectors.inbox import ACTIVE_STATUSES, Cursor, inbox_lookups
    from messages.selectors.rail import rail_counts_compute
    from offices.models import Office

    office = Office.objects.get(slug=OFFICE_SLUG)
    user = office.memberships.select_related("user").get(user__username="staff1").user
    client = Client(HTTP_HOST="127.0.0.1")  # bench.settings allows only loopback hosts
    client.force_login(user)
    health = Tag.objects.get(office=office, name="Health care")
    base = f"/o/{OFFICE_SLUG}/"

    # The cursor that starts page 400 of the default view (rows 19,951-20,000 end page 399).
    boundary = (
        Conversation.objects.filter(office=office, status__in=ACTIVE_STATUSES)
        .order_by("-last_activity_at", "-id")
        .values_list("last_activity_at", "pk")[(DEEP_PAGE - 1) * PAGE_SIZE - 1]
    )
    deep_cursor = Cursor(boundary[0], boundary[1]).encode()
    tag_matches = Conversation.objects.filter(office=office, tags=health).count()

    scenarios: list[tuple[str, str, dict[str, str]]] = [
        ("baseline: bare view (empty TwiML)", "/bench/bare-twiml/", {}),
        ("inbox page 1 (all open)", base, {}),
        (f"inbox page {DEEP_PAGE} (all open, keyset)", base, {"after": deep_cursor}),
        ("inbox page 1, my conversations", base, {"assignee": "me"}),
        (f"tag filter, {tag_matches:,} matches (any status)", base, {"tag": str(health.pk), "status": "any"}),
        ("tag filter, open only", base, {"tag": str(health.pk)}),
        ("search: common word 'rent' (any status)", base, {"q": "rent", "status": "any"}),
        ("search: common word 'medicare' (open)", base, {"q": "medicare"}),
        ("search: phrase '\"green card\"' (any status)", base, {"q": '"green card"', "status": "any"}),
        ("search: rare word 'wetlands' (any status)", base, {"q": "wetlands", "status": "any"}),
        ("search: word in no message 'zeppelin' (any status)", base, {"q": "zeppelin", "status": "any"}),
        ("search: name 'Patricia Rivera' (any status)", base, {"q": "Patricia Rivera", "status": "any"}),
        ("search: name prefix 'sanch' (any status)", base, {"q": "sanch", "status": "any"}),
        ("search: phone digits '555 0123' (any status)", base, {"q": "555 0123", "status": "any"}),
        (
            "search: hostile string (any status)",
            base,
            {"q": "a:* & !(b <-> 'c\\\" OR 1=1 --", "status": "any"},
        ),
    ]
    conversation_pk = (
        Conversation.objects.filter(office=office, status="open")
        .order_by("-last_activity_at")
        .values_list("pk", flat=True)[0]
    )
    scenarios.append(("conversation page (5 messages)", f"{base}conversations/{conversation_pk}/", {}))
    scenarios.append(("API list page 1", f"/api/v1/offices/{OFFICE_SLUG}/conversations/", {}))

    results: list[dict[str, Any]] = []
    for label, path, params in scenarios:
        wall, cpu, response = _timed(
            functools.partial(client.get, path, params), warmup=args.warmup, requests=args.requests
        )
        assert response.status_code == 200, (label, response.status_code)
        with CaptureQueriesContext(connection) as captured:
            client.get(path, params)
        rows = response.content.count(b'<tr class="row') if "conversations/" not in path else None
        _report(results, label, wall, cpu, queries=len(captured), rows=rows)

    # Rail counts computed cold (cache bypassed), and the page with a cold rail cache every time.
    lookups = inbox_lookups(office=office)
    wall, cpu, _ = _timed(
        functools.partial(rail_counts_compute, office=office, user=user, lookups=lookups),
        warmup=2,
        requests=max(10, args.requests // 5),
    )
    _report(results, "rail counts computed (uncached, 2 queries)", wall, cpu)

    def cold() -> Any:
        cache.clear()
        return client.get(base)

    wall, cpu, _ = _timed(cold, warmup=2, requests=max(10, args.requests // 5))
    _report(results, "inbox page 1 with a cold rail cache", wall, cpu)

    # Queries per page whatever the page size.
    per_size = {}
    for size in (10, 50, 100, 200):
        client.get(base, {"size": size, "q": "rent"})
        with CaptureQueriesContext(connection) as captured:
            client.get(base, {"size": size, "q": "rent"})
        per_size[size] = len(captured)
    print(f"queries per page by page size (search 'rent'): {per_size}")
    return {"scenarios": results, "queries_by_page_size": per_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_INBOX_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_INBOX_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--regenerate", action="store_true", help="rebuild the data even if it is there")
    parser.add_argument("--requests", type=int, default=60, help="measured requests per scenario (>= 50)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--no-parallel-query",
        action="store_true",
        help="run the web side with max_parallel_workers_per_gather=0 (through PGOPTIONS)",
    )
    args = parser.parse_args(argv)
    _configure_environment(args)
    _ensure_database(args.database_url)

    import django

    django.setup()
    from django.db import connection

    from bench.common import loadavg, software_versions

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('civicdesk_messages_message') IS NOT NULL")
        has_tables = cursor.fetchone()[0]
        count = 0
        if has_tables:
            cursor.execute("SELECT count(*) FROM civicdesk_messages_message")
            count = cursor.fetchone()[0]
    generated = None
    if args.regenerate or count < N_MESSAGES:
        print("generating data ...", flush=True)
        generated = generate(args)
        print(json.dumps(generated), flush=True)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
        cursor.execute(
            "SELECT (SELECT count(*) FROM civicdesk_messages_message), "
            "(SELECT count(*) FROM civicdesk_messages_conversation), "
            "(SELECT count(*) FROM constituents_constituent)"
        )
        counts = cursor.fetchone()
    config = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "postgres": pg_version.split(" on ")[0],
        "shared_buffers": shared_buffers,
        "work_mem": work_mem,
        "rows": {"messages": counts[0], "conversations": counts[1], "constituents": counts[2]},
        "requests_per_scenario": args.requests,
        "warmup": args.warmup,
        "cpus": os.cpu_count(),
        "loadavg": loadavg(),
        "software": software_versions(),
        "python": sys.version.split()[0],
        "pgoptions": os.environ.get("PGOPTIONS", ""),
    }
    print(json.dumps(config, indent=2), flush=True)
    results = measure(args)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"config": config, "generated": generated, **results}, out, indent=2)


if __name__ == "__main__":
    main()
