"""Who a bulk reply goes to, what the preview says, and how pause, cancel and a dead sender are handled."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from constituents.models import ConsentSource, SmsConsent
from constituents.services import consent_set
from correspondence.models import BulkRecipient, BulkStatus, RecipientState, SkipReason
from correspondence.services import bulk, sending
from messages.models import PACED_BY_KEY, Channel, Direction, Message, MessageStatus
from messages.services import sweeper
from tests import factories
from tests.correspondence.world import World, outbound

pytestmark = pytest.mark.django_db


def create(world: World, **kwargs: Any) -> Any:
    kwargs.setdefault("audience", bulk.Audience(conversations=tuple(world.ids())))
    kwargs.setdefault("letter_id", world.letter.pk)
    return bulk.bulk_reply_create(office=world.office, actor=world.staff, **kwargs)


def test_one_recipient_per_constituent_and_every_exclusion_has_its_reason(world: World) -> None:
    twice = world.texter(first="Twice")
    second = factories.ConversationFactory.create(
        constituent=twice.constituent,
        last_inbound_at=timezone.now() - timedelta(minutes=1),
        status="closed",  # an earlier thread of the same constituent
    )
    factories.MessageFactory.create(conversation=second, to_number=world.number.e164)
    world.conversations.append(second)
    caller = factories.ConversationFactory.create(
        constituent__office=world.office, last_inbound_at=timezone.now()
    )  # left a voicemail, never texted: their number may be a landline
    factories.MessageFactory.create(
        conversation=caller, channel=Channel.VOICEMAIL, to_number=world.number.e164
    )
    world.conversations.append(caller)
    replied = world.texter(first="Replied")
    factories.MessageFactory.create(
        conversation=replied,
        direction=Direction.OUTBOUND,
        sent_by=world.staff,
        status=MessageStatus.SENT,
        created_at=timezone.now(),
    )
    kept = create(world)
    assert kept.recipient_count == 2  # Twice once, and Replied
    assert kept.exclusions == {SkipReason.NO_NUMBER: 1}
    skipping = create(world, skip_replied=True)
    assert skipping.recipient_count == 1
    assert skipping.exclusions == {SkipReason.NO_NUMBER: 1, SkipReason.REPLIED: 1}


def test_a_constituent_who_already_received_the_letter_is_excluded_next_time(
    world: World, private_cache: Any, locmem_outbox: list[Any]
) -> None:
    world.number.send_rate = 100
    world.number.save()
    world.texter()
    first = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=first.pk)
    sending.bulk_reply_send_slice(bulk_reply_id=first.pk, slot=0, seconds=3)
    assert len(locmem_outbox) == 1
    again = create(world)
    assert (again.recipient_count, again.exclusions) == (0, {SkipReason.ALREADY_RECEIVED: 1})


def test_tag_and_filter_audiences(world: World) -> None:
    tagged = world.texter(first="Tagged")
    world.texter(first="Other")
    tag = factories.TagFactory.create(office=world.office, name="Water")
    tagged.tags.add(tag)
    assert create(world, audience=bulk.Audience(tag=tag.pk)).recipient_count == 1
    assert create(world, audience=bulk.Audience(filter={"tag": str(tag.pk)})).recipient_count == 1
    assert create(world, audience=bulk.Audience(filter={})).recipient_count == 2
    with pytest.raises(bulk.BulkReplyRejected, match="not valid"):
        create(world, audience=bulk.Audience(filter={"status": "nonsense"}))


def test_the_preview_counts_segments_cost_time_and_quiet_hour_deferrals(world: World) -> None:
    world.texter(first="East", zip_code="10001")
    world.texter(first="West", zip_code="94103")
    draft = create(world)
    preview = bulk.bulk_reply_preview(
        office=world.office, bulk=draft, now=datetime(2027, 1, 12, 3, 30, tzinfo=UTC)
    )  # 22:30 in New York, 19:30 in San Francisco
    assert preview.recipients == 2
    assert preview.segments == 2
    assert preview.encodings == {"GSM-7": 2}
    assert preview.cost == (Decimal("0.0083") * 2).quantize(Decimal("0.01"))
    assert preview.seconds == 2.0  # two segments on a long code (1 segment/s)
    assert [(d.time_zone, d.recipients, d.at) for d in preview.deferrals] == [
        ("America/New_York", 1, datetime(2027, 1, 12, 13, 0, tzinfo=UTC))
    ]
    assert sorted(r.body.split(",")[0] for _, r in preview.samples) == ["Dear East", "Dear West"]


def test_cancel_stops_waiting_recipients_and_a_handed_text_not_yet_sent(
    world: World, private_cache: Any
) -> None:
    for _ in range(3):
        world.texter()
    started = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=started.pk)
    (claimed,), skipped = sending._claim(
        bulk=started, zones=["America/New_York"], now=timezone.now(), limit=1
    )
    assert skipped == 0  # handed to delivery, not sent yet (the sender then dies)
    bulk.bulk_reply_cancel(office=world.office, actor=world.staff, pk=started.pk)
    states = sorted(BulkRecipient.objects.filter(bulk_reply=started).values_list("state", flat=True))
    assert states == ["cancelled", "cancelled", "handed"]
    assert Message.objects.get(pk=claimed.message_id).status == MessageStatus.CANCELED
    report = sending.bulk_reply_send_slice(bulk_reply_id=started.pk, slot=0, seconds=2)
    assert (report.stopped, report.sent) == ("not sending", 0)


def test_pause_stops_the_sender_and_resume_carries_on(
    world: World, private_cache: Any, locmem_outbox: list[Any]
) -> None:
    world.number.send_rate = 100
    world.number.save()
    world.texter()
    started = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=started.pk)
    bulk.bulk_reply_pause(office=world.office, actor=world.staff, pk=started.pk)
    assert sending.bulk_reply_send_slice(bulk_reply_id=started.pk, slot=0, seconds=2).sent == 0
    assert locmem_outbox == []
    bulk.bulk_reply_resume(office=world.office, actor=world.staff, pk=started.pk)
    assert sending.bulk_reply_send_slice(bulk_reply_id=started.pk, slot=0, seconds=2).sent == 1


def test_a_sender_that_died_before_sending_leaves_the_text_to_the_tick_not_to_the_sweeper(
    world: World, private_cache: Any, locmem_outbox: list[Any], settings: Any
) -> None:
    world.number.send_rate = 100
    world.number.save()
    world.texter()
    started = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=started.pk)
    (claimed,), _ = sending._claim(bulk=started, zones=["America/New_York"], now=timezone.now(), limit=1)
    message = Message.objects.get(pk=claimed.message_id)
    assert PACED_BY_KEY in message.details
    later = timezone.now() + timedelta(minutes=10)
    assert sweeper.sweep(now=later).outbound_requeued == 0  # the sweeper would send it unpaced
    assert sending.handed_stale_requeue(now=later) == 1
    assert sending.bulk_reply_send_slice(bulk_reply_id=started.pk, slot=0, seconds=2).sent == 1
    assert len(locmem_outbox) == 1
    assert [m.pk for m in outbound(world)] == [message.pk]  # the same message, sent once
    assert sending.bulk_reply_finish_if_done(bulk_reply_id=started.pk)
    started.refresh_from_db()
    assert started.status == BulkStatus.DONE
    assert BulkRecipient.objects.get(bulk_reply=started).state == RecipientState.HANDED


def test_a_second_sender_for_the_same_slot_does_nothing(world: World, private_cache: Any) -> None:
    world.texter()
    started = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=started.pk)
    assert sending._try_slot(started.pk, 0)
    try:
        from django.db import connections

        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", [sending._LOCK_NAMESPACE, started.pk * 64]
                )
                assert cursor.fetchone() == (False,)
        finally:
            other.close()
    finally:
        sending._release_slot(started.pk, 0)


def test_a_redraft_replaces_the_draft_and_a_started_bulk_reply_is_never_replaced(world: World) -> None:
    world.texter()
    draft = create(world)
    fresh = bulk.bulk_reply_redraft(
        office=world.office,
        actor=world.staff,
        pk=draft.pk,
        letter_id=world.letter.pk,
        body=None,
        skip_replied=True,
        send_at=None,
    )
    assert fresh.skip_replied
    assert fresh.audience == draft.audience
    assert not type(draft).objects.filter(pk=draft.pk).exists()
    bulk.bulk_reply_start(office=world.office, actor=world.staff, pk=fresh.pk)
    with pytest.raises(bulk.BulkReplyRejected, match="already"):
        bulk.bulk_reply_redraft(
            office=world.office,
            actor=world.staff,
            pk=fresh.pk,
            letter_id=world.letter.pk,
            body=None,
            skip_replied=False,
            send_at=None,
        )
    assert type(draft).objects.filter(pk=fresh.pk).exists()


def test_a_claim_takes_several_due_recipients_at_once_and_skips_the_opted_out(
    world: World, private_cache: Any
) -> None:
    texters = [world.texter() for _ in range(4)]
    started = create(world, start=True)
    bulk.bulk_reply_prepare(bulk_reply_id=started.pk)
    consent_set(
        constituent=texters[1].constituent, consent=SmsConsent.OPTED_OUT, source=ConsentSource.KEYWORD
    )
    claimed, skipped = sending._claim(bulk=started, zones=["America/New_York"], now=timezone.now(), limit=3)
    assert (len(claimed), skipped) == (2, 1)
    # Each claimed recipient is handed with its own queued text; the rest wait for the next claim.
    messages = Message.objects.filter(pk__in=[c.message_id for c in claimed])
    assert {m.status for m in messages} == {MessageStatus.QUEUED}
    assert len({m.to_number for m in messages}) == 2
    states = Counter(BulkRecipient.objects.filter(bulk_reply=started).values_list("state", flat=True))
    assert states == Counter({"handed": 2, "skipped": 1, "pending": 1})
    again, _ = sending._claim(bulk=started, zones=["America/New_York"], now=timezone.now(), limit=3)
    assert len(again) == 1
