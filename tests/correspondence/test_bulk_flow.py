"""A bulk reply from start to done, in-process: prepared once, sent once each, paced, opt-outs honoured."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import timezone

from constituents.models import SmsConsent
from correspondence.models import BulkRecipient, BulkStatus, RecipientState, SkipReason
from correspondence.services import bulk, sending
from tests.correspondence.world import World, outbound

pytestmark = pytest.mark.django_db(transaction=False)


def run_until_quiet(bulk_id: int, *, rounds: int = 20, at: datetime | None = None) -> None:
    wall = (lambda: at) if at is not None else timezone.now
    for _ in range(rounds):
        report = sending.bulk_reply_send_slice(bulk_reply_id=bulk_id, slot=0, seconds=5, wall=wall)
        if report.stopped == "nothing due":
            break
    sending.bulk_reply_finish_if_done(bulk_reply_id=bulk_id)


def test_each_constituent_gets_one_text_rendered_for_them_and_the_reply_is_done(
    world: World, private_cache: Any, locmem_outbox: list[Any]
) -> None:
    world.number.send_rate = 100
    world.number.save()
    maria = world.texter(first="Maria")
    world.texter(first="")
    created = bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        start=True,
    )
    assert created.recipient_count == 2
    bulk.bulk_reply_prepare(bulk_reply_id=created.pk)
    assert bulk.bulk_reply_prepare(bulk_reply_id=created.pk) == 0  # a second preparation writes nothing
    run_until_quiet(created.pk)

    bodies = sorted(m.body for m in outbound(world))
    assert bodies == [
        "Dear Maria, thank you for writing to Representative Jordan Rivera.",
        "Dear neighbor, thank you for writing to Representative Jordan Rivera.",
    ]
    assert {m.conversation_id for m in outbound(world)} == {c.pk for c in world.conversations}
    assert len(locmem_outbox) == 2
    created.refresh_from_db()
    assert created.status == BulkStatus.DONE
    assert maria.pk in {r.conversation_id for r in BulkRecipient.objects.filter(bulk_reply=created)}


def test_exclusions_are_counted_by_reason_and_an_opt_out_after_preparation_is_honoured(
    world: World, private_cache: Any, locmem_outbox: list[Any]
) -> None:
    world.number.send_rate = 100
    world.number.save()
    keep = world.texter(first="Kim")
    late_stop = world.texter(first="Lee")
    world.texter(first="Out", sms_consent=SmsConsent.OPTED_OUT)
    created = bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        start=True,
    )
    assert created.recipient_count == 2
    assert created.exclusions == {SkipReason.OPTED_OUT: 1}
    bulk.bulk_reply_prepare(bulk_reply_id=created.pk)
    late_stop.constituent.sms_consent = SmsConsent.OPTED_OUT
    late_stop.constituent.save()
    run_until_quiet(created.pk)

    assert [m.conversation_id for m in outbound(world)] == [keep.pk]
    skipped = BulkRecipient.objects.get(bulk_reply=created, conversation=late_stop)
    assert (skipped.state, skipped.skip_reason) == (RecipientState.SKIPPED, SkipReason.OPTED_OUT)


def test_recipients_in_quiet_hours_wait_and_are_never_dropped(
    world: World, private_cache: Any, locmem_outbox: list[Any]
) -> None:
    world.number.send_rate = 100
    world.number.save()
    world.texter(first="East", zip_code="10001")  # New York
    world.texter(first="West", zip_code="94103")  # San Francisco
    created = bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        start=True,
    )
    bulk.bulk_reply_prepare(bulk_reply_id=created.pk)
    # 03:30 UTC: 22:30 in New York (quiet), 19:30 in San Francisco (allowed).
    run_until_quiet(created.pk, at=datetime(2027, 1, 12, 3, 30, tzinfo=UTC))
    assert [m.body.split(",")[0] for m in outbound(world)] == ["Dear West"]
    created.refresh_from_db()
    assert created.status == BulkStatus.SENDING  # never done while a recipient waits
    # 13:00 UTC: 08:00 in New York.
    run_until_quiet(created.pk, at=datetime(2027, 1, 12, 13, 0, 1, tzinfo=UTC))
    assert sorted(m.body.split(",")[0] for m in outbound(world)) == ["Dear East", "Dear West"]
    assert all(m.provider_sid for m in outbound(world))  # both accepted by Twilio
