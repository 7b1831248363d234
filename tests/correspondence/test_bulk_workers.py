"""Bulk replies sent by real Celery worker processes through the real twilio SDK to a fake Twilio.

What is proven here, from outside the workers (the fake counts every request that reaches it):

- workers killed with SIGKILL mid-send lose no text and send none twice (the delivery state machine, the
  stale-handed requeue and the reconciler together);
- a STOP that arrives while the bulk reply is sending is honoured, before the claim and after it, and one
  that arrives while it is paused fails the text an earlier try had already written;
- the pace per sending number holds across processes, and is reached;
- a storm of 429s delays texts without doubling or losing any; permanent errors fail only their own text,
  and 21610 records the opt-out;
- pause stops new sends within a second and resume sends the rest; cancel lets only the texts already
  being sent complete.

Beat is simulated: the test calls ``bulk_replies_tick`` itself whenever the queue is empty. Quiet hours are
switched off for the office (equal start and end), so the tests do not depend on the time of day.
"""

from __future__ import annotations

import bisect
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from datetime import time as clock_time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from civicdesk.celery import app as celery_app
from common.queueing import cache_redis_client
from constituents.models import ConsentSource, Constituent, SmsConsent
from constituents.services import consent_set
from correspondence import pacing, tasks
from correspondence.models import (
    BulkRecipient,
    BulkReply,
    BulkStatus,
    CorrespondenceSettings,
    RecipientState,
    SkipReason,
)
from correspondence.services import bulk, sending
from messages.models import Message, MessageStatus
from messages.services.delivery import SENDING_STALE_AFTER
from messages.services.replies import OPTED_OUT_REASON
from messages.services.sweeper import sweep
from tests.correspondence.world import World, outbound, world_build
from tests.fakes.fake_twilio import ROUTE_CREATE_MESSAGE, FakeTwilio, Scripted
from tests.workers import Workers, celery_workers, queue_length, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 2
BEAT_EVERY_SECONDS = 0.5


@pytest.fixture(scope="module")
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(accounts={settings.TWILIO_ACCOUNT_SID: settings.TWILIO_AUTH_TOKEN}) as fake:
        yield fake


@pytest.fixture(scope="module")
def workers(django_db_setup: None, fake_twilio: FakeTwilio) -> Iterator[Workers]:
    """Two worker processes for the whole module: they keep no state between tasks."""
    with celery_workers(WORKERS, twilio_base_url=fake_twilio.base_url, twilio_http_timeout=5.0) as started:
        yield started


@pytest.fixture
def fake(fake_twilio: FakeTwilio, workers: Workers) -> Iterator[FakeTwilio]:
    """The module's fake Twilio and both workers alive, with nothing left over from an earlier test."""
    for worker in workers:
        if not worker.alive():
            worker.restart()
    celery_app.control.purge()
    fake_twilio.script_clear()
    yield fake_twilio
    celery_app.control.purge()
    workers.wait_idle(timeout=30)  # nothing of this test's runs into the next one's database
    fake_twilio.script_clear()


# --- data and observation -----------------------------------------------------------------------------------


def world_with(*, recipients: int, send_rate: float) -> World:
    """An office without quiet hours, its number paced at ``send_rate``, and ``recipients`` texters."""
    world = world_build(send_rate=send_rate)
    CorrespondenceSettings.objects.create(
        office=world.office, quiet_hours_starts=clock_time(0), quiet_hours_ends=clock_time(0)
    )
    for n in range(recipients):
        world.texter(first=f"R{n}")
    return world


def bulk_start(world: World) -> BulkReply:
    """Create and start the bulk reply; on commit its preparation is published, and a worker takes it."""
    return bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        start=True,
    )


def phones(world: World) -> list[str]:
    return [conversation.constituent.phone for conversation in world.conversations]


def posts(fake: FakeTwilio, world: World) -> Counter[str]:
    """Create-message requests that reached the fake, by recipient number (this world's only)."""
    numbers = set(phones(world))
    tos = (request.form.get("To", [""])[-1] for request in fake.requests_for(ROUTE_CREATE_MESSAGE))
    return Counter(to for to in tos if to in numbers)


def posted(fake: FakeTwilio, world: World) -> int:
    return sum(posts(fake, world).values())


def reached(fake: FakeTwilio, world: World, count: int) -> Callable[[], bool]:
    return lambda: posted(fake, world) >= count


def status_of(bulk_reply: BulkReply) -> str:
    return BulkReply.objects.values_list("status", flat=True).get(pk=bulk_reply.pk)


def recipients_in(bulk_reply: BulkReply, state: str) -> int:
    return BulkRecipient.objects.filter(bulk_reply=bulk_reply, state=state).count()


def beat_until(predicate: Callable[[], bool], *, timeout: float) -> bool:
    """Poll ``predicate``, running beat's bulk tick whenever the queue is empty (as ``expires`` would)."""
    deadline = time.monotonic() + timeout
    next_tick = 0.0
    while time.monotonic() < deadline:
        if predicate():
            return True
        if time.monotonic() >= next_tick and queue_length() == 0:
            tasks.bulk_replies_tick()
            next_tick = time.monotonic() + BEAT_EVERY_SECONDS
        time.sleep(0.05)
    return predicate()


def is_done(bulk_reply: BulkReply) -> Callable[[], bool]:
    return lambda: status_of(bulk_reply) == BulkStatus.DONE


def assert_each_sent_once(fake: FakeTwilio, world: World, *, except_: AbstractSet[str] = frozenset()) -> None:
    """Every recipient but ``except_`` has one outbound message, holding the SID of the one text Twilio got
    for them; ``except_`` got nothing."""
    expected = {phone: 1 for phone in phones(world) if phone not in except_}
    assert dict(posts(fake, world)) == expected
    sent = [message for message in outbound(world) if message.to_number not in except_]
    assert Counter(message.to_number for message in sent) == Counter(expected)
    at_twilio = fake.messages
    for message in sent:
        assert message.provider_sid, f"{message.to_number} has no SID ({message.status})"
        assert at_twilio[message.provider_sid]["to"] == message.to_number
        assert at_twilio[message.provider_sid]["body"] == message.body


# --- exactly once under SIGKILL -----------------------------------------------------------------------------

CRASH_RECIPIENTS = 60
CRASH_RATE = 30.0
# Each send waits this long for Twilio's answer (the create takes effect at once): a kill lands mid-send.
CRASH_TWILIO_SECONDS = 0.2
# The kills come after a random number of sends in each of these ranges, far enough apart for the killed
# worker to have started again.
KILL_WINDOWS = ((6, 16), (24, 34), (42, 52))


def test_workers_killed_mid_send_lose_no_text_and_send_none_twice(workers: Workers, fake: FakeTwilio) -> None:
    world = world_with(recipients=CRASH_RECIPIENTS, send_rate=CRASH_RATE)
    fake.script(*[Scripted.slow(CRASH_TWILIO_SECONDS)] * CRASH_RECIPIENTS, route=ROUTE_CREATE_MESSAGE)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    created = bulk_start(world)

    for low, high in KILL_WINDOWS:
        point = rng.randrange(low, high)
        assert beat_until(reached(fake, world, point), timeout=60), f"seed {seed}"
        time.sleep(rng.uniform(0, CRASH_TWILIO_SECONDS))
        victim = rng.choice([worker for worker in workers if worker.alive()])
        victim.kill(signal.SIGKILL)
        victim.restart(wait=False)  # it may take a slot's task at once, and be deaf to pings while it runs

    # Beat keeps the senders going until nobody is left waiting; then the workers finish what they hold.
    assert beat_until(lambda: recipients_in(created, RecipientState.PENDING) == 0, timeout=60), f"seed {seed}"
    workers.wait_idle(timeout=90)  # a restarted worker boots slowly on a loaded machine

    # What the kills left behind: texts handed to delivery that never left (queued), and sends whose
    # answer never came back (sending, no SID). Later, beat requeues the first and the sweeper has the
    # second reconciled with what Twilio holds.
    later = timezone.now() + max(sending.HANDED_STALE_AFTER, SENDING_STALE_AFTER) + timedelta(seconds=1)
    requeued = sending.handed_stale_requeue(now=later)
    report = sweep(now=later)
    assert requeued + report.marked_unknown >= 1, f"no kill landed mid-send (seed {seed})"
    assert beat_until(is_done(created), timeout=60), f"seed {seed}"

    assert_each_sent_once(fake, world)
    assert recipients_in(created, RecipientState.HANDED) == CRASH_RECIPIENTS
    assert {m.send_attempts for m in outbound(world)} == {1}, f"seed {seed}"


# --- STOP mid-send ------------------------------------------------------------------------------------------

STOP_RECIPIENTS = 12
STOP_RATE = 10.0
HOLD_SECONDS = 3.0


def opt_out(constituent: Constituent) -> None:
    """As the STOP keyword's processing records it."""
    consent_set(
        constituent=constituent, consent=SmsConsent.OPTED_OUT, source=ConsentSource.KEYWORD, keyword="STOP"
    )


def test_a_stop_that_arrives_mid_send_is_honoured_before_and_after_the_claim(
    workers: Workers, fake: FakeTwilio
) -> None:
    world = world_with(recipients=STOP_RECIPIENTS, send_rate=STOP_RATE)
    created = bulk_start(world)
    assert beat_until(lambda: posted(fake, world) >= 3, timeout=30)
    # Hold the number's pace: each sender now waits, with its next recipient claimed (handed, message
    # queued), and the rest are still pending.
    client = cache_redis_client()
    assert client is not None
    pacing.Pacer(client).penalize(world.number.e164, seconds=HOLD_SECONDS)
    held = BulkRecipient.objects.filter(
        bulk_reply=created, state=RecipientState.HANDED, message__status=MessageStatus.QUEUED
    )
    assert wait_for(held.exists, timeout=HOLD_SECONDS / 2)
    claimed = held.select_related("constituent").first()
    assert claimed is not None
    waiting = (
        BulkRecipient.objects.filter(bulk_reply=created, state=RecipientState.PENDING)
        .select_related("constituent")
        .order_by("-id")
        .first()
    )
    assert waiting is not None
    opt_out(claimed.constituent)
    opt_out(waiting.constituent)

    assert beat_until(is_done(created), timeout=30)
    stopped = {claimed.constituent.phone, waiting.constituent.phone}
    assert_each_sent_once(fake, world, except_=stopped)
    waiting.refresh_from_db()
    assert (waiting.state, waiting.skip_reason, waiting.message_id) == (
        RecipientState.SKIPPED,
        SkipReason.OPTED_OUT,
        None,
    )
    claimed.refresh_from_db()
    assert claimed.message_id is not None
    message = Message.objects.get(pk=claimed.message_id)
    assert (message.status, message.error_message, message.provider_sid) == (
        MessageStatus.FAILED,
        OPTED_OUT_REASON,
        None,
    )


def test_a_stop_while_paused_fails_the_text_already_written_for_them(
    workers: Workers, fake: FakeTwilio
) -> None:
    world = world_with(recipients=STOP_RECIPIENTS, send_rate=STOP_RATE)
    created = bulk_start(world)
    assert beat_until(lambda: posted(fake, world) >= 2, timeout=30)
    client = cache_redis_client()
    assert client is not None
    pacing.Pacer(client).penalize(world.number.e164, seconds=HOLD_SECONDS / 2)
    held = BulkRecipient.objects.filter(
        bulk_reply=created, state=RecipientState.HANDED, message__status=MessageStatus.QUEUED
    )
    assert wait_for(held.exists, timeout=HOLD_SECONDS / 4)
    bulk.bulk_reply_pause(office=world.office, actor=world.staff, pk=created.pk)
    # The senders give their held recipients back (pending again, their messages written and queued).
    assert wait_for(lambda: not held.exists(), timeout=HOLD_SECONDS)
    written = (
        BulkRecipient.objects.filter(
            bulk_reply=created, state=RecipientState.PENDING, message__status=MessageStatus.QUEUED
        )
        .select_related("constituent")
        .first()
    )
    assert written is not None
    opt_out(written.constituent)
    bulk.bulk_reply_resume(office=world.office, actor=world.staff, pk=created.pk)

    assert beat_until(is_done(created), timeout=30)
    assert_each_sent_once(fake, world, except_={written.constituent.phone})
    written.refresh_from_db()
    assert (written.state, written.skip_reason) == (RecipientState.SKIPPED, SkipReason.OPTED_OUT)
    assert written.message_id is not None
    message = Message.objects.get(pk=written.message_id)
    assert (message.status, message.error_message, message.provider_sid) == (
        MessageStatus.FAILED,
        OPTED_OUT_REASON,
        None,
    )


# --- pacing -------------------------------------------------------------------------------------------------

PACE_RECIPIENTS = 40
PACE_RATE = 5.0
PACE_WINDOW_SECONDS = 2.0


def test_the_pace_of_one_number_holds_across_workers_and_is_reached(
    workers: Workers, fake: FakeTwilio
) -> None:
    world = world_with(recipients=PACE_RECIPIENTS, send_rate=PACE_RATE)
    created = bulk_start(world)
    assert beat_until(is_done(created), timeout=PACE_RECIPIENTS / PACE_RATE + 20)
    assert_each_sent_once(fake, world)

    numbers = set(phones(world))
    stamps = sorted(
        message["_sent_at"].timestamp() for message in fake.messages.values() if message["to"] in numbers
    )
    most = max(
        bisect.bisect_left(stamps, start + PACE_WINDOW_SECONDS) - index for index, start in enumerate(stamps)
    )
    assert most <= PACE_RATE * PACE_WINDOW_SECONDS + 1, f"{most} texts in {PACE_WINDOW_SECONDS}s"
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert PACE_RATE * 0.85 <= achieved <= PACE_RATE * 1.15, f"{achieved:.2f} texts/s"


# --- failures -----------------------------------------------------------------------------------------------

STORM = 4
STORM_RECIPIENTS = 16


def test_a_storm_of_429s_delays_texts_and_each_is_still_sent_once(workers: Workers, fake: FakeTwilio) -> None:
    world = world_with(recipients=STORM_RECIPIENTS, send_rate=30.0)
    throttled = Scripted.twilio_error(429, 20429, "Too Many Requests")
    fake.script(*[throttled] * STORM, route=ROUTE_CREATE_MESSAGE)
    created = bulk_start(world)
    assert beat_until(is_done(created), timeout=60)

    attempts = fake.requests_for(ROUTE_CREATE_MESSAGE)
    assert (
        sum(request.form["To"][-1] in set(phones(world)) for request in attempts) == STORM_RECIPIENTS + STORM
    )
    assert {message.status for message in outbound(world)} <= {MessageStatus.SENDING, MessageStatus.SENT}
    throttled_tos = {request.form["To"][-1] for request in attempts[:STORM]}
    retried = BulkRecipient.objects.filter(bulk_reply=created, constituent__phone__in=throttled_tos)
    assert all(recipient.attempts >= 2 for recipient in retried)
    # The 429s counted as requests; each recipient's text was created at Twilio once.
    created_at_twilio = Counter(m["to"] for m in fake.messages.values() if m["to"] in set(phones(world)))
    assert created_at_twilio == Counter(dict.fromkeys(phones(world), 1))
    messages = outbound(world)
    assert Counter(m.to_number for m in messages) == Counter(dict.fromkeys(phones(world), 1))
    assert all(m.provider_sid for m in messages)


FAILING_RECIPIENTS = 12
INVALID_AT = 3  # the 4th create answers 21211, the 8th 21610
UNSUBSCRIBED_AT = 7


def test_permanent_errors_fail_only_their_texts_and_21610_records_the_opt_out(
    workers: Workers, fake: FakeTwilio
) -> None:
    world = world_with(recipients=FAILING_RECIPIENTS, send_rate=30.0)
    script = [Scripted()] * (UNSUBSCRIBED_AT + 1)
    script[INVALID_AT] = Scripted.twilio_error(400, 21211, "The 'To' number is not a valid phone number.")
    script[UNSUBSCRIBED_AT] = Scripted.twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    numbers = set(phones(world))
    fake.script(*script, route=ROUTE_CREATE_MESSAGE)
    created = bulk_start(world)
    assert beat_until(is_done(created), timeout=30)

    tos = [r.form["To"][-1] for r in fake.requests_for(ROUTE_CREATE_MESSAGE) if r.form["To"][-1] in numbers]
    assert Counter(tos) == Counter(dict.fromkeys(numbers, 1))  # one request each, the failed ones too
    invalid, unsubscribed = tos[INVALID_AT], tos[UNSUBSCRIBED_AT]
    by_number = {message.to_number: message for message in outbound(world)}
    assert (by_number[invalid].status, by_number[invalid].error_code) == (MessageStatus.FAILED, 21211)
    assert by_number[invalid].error_message == "The recipient's phone number is not valid."
    assert (by_number[unsubscribed].status, by_number[unsubscribed].error_code) == (
        MessageStatus.FAILED,
        21610,
    )
    assert Constituent.objects.get(phone=unsubscribed).sms_consent == SmsConsent.OPTED_OUT
    assert Constituent.objects.get(phone=invalid).sms_consent != SmsConsent.OPTED_OUT
    rest = [message for number, message in by_number.items() if number not in {invalid, unsubscribed}]
    assert len(rest) == FAILING_RECIPIENTS - 2
    assert all(message.provider_sid and message.status != MessageStatus.FAILED for message in rest)


# --- pause, resume, cancel ----------------------------------------------------------------------------------

CONTROL_RECIPIENTS = 30
CONTROL_RATE = 10.0
SETTLE_SECONDS = 1.0  # pause and cancel take effect within this
QUIET_SECONDS = 1.5  # and then nothing more is sent for at least this long


def test_pause_stops_new_sends_within_a_second_and_resume_sends_the_rest(
    workers: Workers, fake: FakeTwilio
) -> None:
    world = world_with(recipients=CONTROL_RECIPIENTS, send_rate=CONTROL_RATE)
    created = bulk_start(world)
    assert beat_until(lambda: posted(fake, world) >= 5, timeout=30)
    bulk.bulk_reply_pause(office=world.office, actor=world.staff, pk=created.pk)
    at_pause = posted(fake, world)
    time.sleep(SETTLE_SECONDS)
    settled = posted(fake, world)
    assert settled - at_pause <= WORKERS  # only texts a sender had already taken past its last check
    time.sleep(QUIET_SECONDS)
    assert posted(fake, world) == settled
    assert settled < CONTROL_RECIPIENTS
    assert status_of(created) == BulkStatus.PAUSED

    bulk.bulk_reply_resume(office=world.office, actor=world.staff, pk=created.pk)
    assert beat_until(is_done(created), timeout=30)
    assert_each_sent_once(fake, world)


def test_cancel_lets_only_texts_already_being_sent_complete(workers: Workers, fake: FakeTwilio) -> None:
    world = world_with(recipients=CONTROL_RECIPIENTS, send_rate=CONTROL_RATE)
    created = bulk_start(world)
    assert beat_until(lambda: posted(fake, world) >= 5, timeout=30)
    bulk.bulk_reply_cancel(office=world.office, actor=world.staff, pk=created.pk)
    at_cancel = posted(fake, world)
    time.sleep(SETTLE_SECONDS)
    settled = posted(fake, world)
    assert settled - at_cancel <= WORKERS
    assert beat_until(lambda: False, timeout=QUIET_SECONDS) is False  # beat must not restart it either
    workers.wait_idle(timeout=30)
    assert posted(fake, world) == settled
    assert status_of(created) == BulkStatus.CANCELLED

    sent = set(posts(fake, world))
    assert all(count == 1 for count in posts(fake, world).values())
    recipients = list(
        BulkRecipient.objects.filter(bulk_reply=created).select_related("message", "constituent")
    )
    for recipient in recipients:
        phone = recipient.constituent.phone
        if phone in sent:
            assert recipient.state == RecipientState.HANDED
            assert recipient.message is not None
            assert recipient.message.provider_sid, phone
        else:
            assert recipient.state == RecipientState.CANCELLED or (
                recipient.state == RecipientState.HANDED
                and recipient.message is not None
                and recipient.message.status == MessageStatus.CANCELED
            ), f"{phone}: {recipient.state}, {recipient.message and recipient.message.status}"
    assert not Message.objects.filter(office=world.office, status=MessageStatus.QUEUED).exists()
    # Each sender may hold one claim's worth of handed texts, cancelled with their messages (above).
    held = WORKERS * sending.claim_batch_size(rates=bulk.rates_for(office=world.office))
    assert recipients_in(created, RecipientState.CANCELLED) >= CONTROL_RECIPIENTS - settled - held
