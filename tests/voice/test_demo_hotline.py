"""The demo office's IVR (demo.seed_voice), called through the simulator the demo uses: every branch a
staffer can try from the call simulator page ends where the menu says it does."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from demo.calls import CallScript, CallTrace, run_call
from demo.seed_voice import DEMO_STAFF_NUMBERS, demo_voice_ensure
from messages.models import Channel, ConversationTag, Message
from offices.models import IvrMenu, OfficeHoliday
from tests import factories
from tests.voice.conftest import open_all_week
from tests.voice.helpers import HOTLINE, client_transport
from voice.models import CallInCampaign, CallInPosition, CallInTally, CallOutcome
from voice.selectors.tallies import tally_summary
from voice.services import voice_followups_drain
from voice.services.campaigns import call_in_campaign_switch

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_office(office: Any, phone_number: Any) -> Any:
    """An office with the demo seed's tags and queues and the demo IVR, open around the clock."""
    for name in ("Health care", "Casework", "H.R. 1234"):
        factories.TagFactory.create(office=office, name=name)
    for name in ("Policy", "Casework"):
        factories.QueueFactory.create(office=office, name=name)
    demo_voice_ensure(office=office)
    open_all_week(office)
    return office


def call(*inputs: str, **script: Any) -> CallTrace:
    trace = run_call(CallScript(to_number=HOTLINE, inputs=inputs, **script), client_transport())
    assert trace.ok, trace
    voice_followups_drain()  # as the demo's worker does: tags and queues the voicemails' threads
    return trace


def heard(trace: CallTrace) -> str:
    return " | ".join(trace.heard)


def test_pressing_1_leaves_a_health_care_voicemail_in_the_policy_queue(demo_office: Any) -> None:
    trace = call("1")

    assert "Thank you for calling the office of Representative Jordan Rivera" in heard(trace)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    conversation = voicemail.conversation
    assert voicemail.details["topic"] == "Health care"
    assert conversation.queue is not None
    assert conversation.queue.name == "Policy"
    assert ConversationTag.objects.filter(conversation=conversation, tag__name="Health care").exists()


def test_the_spanish_branch_speaks_spanish_and_takes_a_voicemail(demo_office: Any) -> None:
    trace = call("9", "2")

    assert "Gracias por llamar a la oficina del representante Jordan Rivera." in trace.heard
    assert any("Deje su nombre" in text for text in trace.heard)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.details["topic"] == "Casework"


def test_talk_to_staff_rings_the_demo_staff_phones(demo_office: Any) -> None:
    call("3", staff_answers=True)

    details = Message.objects.get(channel=Channel.CALL).details
    assert details["outcome"] == CallOutcome.ANSWERED
    assert details["answered_by"] == DEMO_STAFF_NUMBERS[0]


def test_office_information_and_repeat(demo_office: Any) -> None:
    main = IvrMenu.objects.get(office=demo_office, is_main=True)

    info = call("4", "5")
    again = call("0", "5", from_number="+14155550124")

    assert main.info_text in info.heard
    assert again.heard.count(main.greeting_text) == 2
    assert Message.objects.filter(channel=Channel.VOICEMAIL).count() == 2


def test_after_hours_callers_hear_the_hours_and_go_to_voicemail(demo_office: Any) -> None:
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(demo_office.time_zone))
    for days in (-1, 0, 1):  # a call that straddles midnight is closed too
        OfficeHoliday.objects.create(office=demo_office, date=today + timedelta(days=days))
    main = IvrMenu.objects.get(office=demo_office, is_main=True)

    trace = call()

    assert main.after_hours_text in trace.heard
    assert Message.objects.get(channel=Channel.CALL).details["outcome"] == CallOutcome.VOICEMAIL


def test_the_call_in_day_switched_on_tallies_callers_and_takes_messages(demo_office: Any) -> None:
    staff: Any = factories.MembershipFactory.create(office=demo_office, role="staff").user
    campaign = CallInCampaign.objects.get(office=demo_office)
    call_in_campaign_switch(office=demo_office, campaign_id=campaign.pk, is_active=True, switched_by=staff)

    first = call("1", from_number="+14155550121")
    call("2", from_number="+14155550122")
    call("3", from_number="+14155550123")

    assert campaign.prompt_text in first.heard
    assert dict(CallInTally.objects.values_list("caller_phone", "position")) == {
        "+14155550121": CallInPosition.SUPPORT,
        "+14155550122": CallInPosition.OPPOSE,
    }
    summary = tally_summary(office=demo_office, campaign=campaign)
    assert (summary.support, summary.oppose) == (1, 1)
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert ConversationTag.objects.filter(conversation=voicemail.conversation, tag=campaign.tag).exists()
