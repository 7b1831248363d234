"""Call-in days: a front menu about one issue tallies each caller's position once, with no staff time."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from messages.models import Channel, ConversationStatus, ConversationTag, Message
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALL_SID, load
from voice.models import CallInCampaign, CallInPosition, CallInTally, CallOutcome
from voice.selectors.tallies import issue_call_in_positions, tally_summaries, tally_summary
from voice.services import voice_followups_drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(hotline: Hotline) -> CallInCampaign:
    issue: Any = factories.TagFactory.create(office=hotline.office, name="H.R. 1234")
    return CallInCampaign.objects.create(
        office=hotline.office,
        tag=issue,
        title="H.R. 1234",
        prompt_text="If you are calling about H.R. 1234, press 1 to support, 2 to oppose, 3 for a message.",
        is_active=True,
    )


def _choose(
    post_signed: Any,
    campaign: CallInCampaign,
    digits: str | None,
    call_sid: str = CALL_SID,
    caller: str = "+14155550123",
) -> str:
    params = {
        **load("voice_call_received__basic")["params"],
        "CallSid": call_sid,
        "From": caller,
        "Caller": caller,
    }
    assert post_signed("/webhooks/twilio/voice/", params).status_code == 200
    if digits is not None:
        params["Digits"] = digits
    path = f"/webhooks/twilio/voice/menu/?attempt=1&node=callin-{campaign.pk}&step=1"
    response = post_signed(path, params)
    assert response.status_code == 200
    return str(response.content.decode())


def test_active_campaign_is_the_first_thing_callers_hear(post_voice: Any, campaign: CallInCampaign) -> None:
    body = post_voice("voice_call_received__basic").content.decode()
    assert "If you are calling about H.R. 1234" in body
    assert f"node=callin-{campaign.pk}" in body
    assert "Thank you for calling the office" not in body


def test_support_and_oppose_are_tallied_and_the_call_ends(post_signed: Any, campaign: CallInCampaign) -> None:
    body = _choose(post_signed, campaign, "1")
    assert "Your position has been recorded" in body
    assert body.endswith("<Hangup /></Response>")
    _choose(post_signed, campaign, "2", call_sid="CA" + "2" * 32, caller="+14155550124")
    tallies = {t.caller_phone: t for t in CallInTally.objects.all()}
    assert tallies["+14155550123"].position == CallInPosition.SUPPORT
    assert tallies["+14155550124"].position == CallInPosition.OPPOSE
    call = Message.objects.get(provider_sid=CALL_SID)
    assert call.details["outcome"] == CallOutcome.TALLIED
    assert call.details["tally"] == {"campaign": campaign.pk, "title": "H.R. 1234", "position": "support"}


def test_a_repeat_caller_counts_once_with_their_latest_position(
    post_signed: Any, campaign: CallInCampaign
) -> None:
    _choose(post_signed, campaign, "1")
    _choose(post_signed, campaign, "1")  # the same webhook again: nothing changes
    _choose(post_signed, campaign, "2", call_sid="CA" + "3" * 32)  # the same person calls again
    tally = CallInTally.objects.get()
    assert (tally.position, tally.call_count) == (CallInPosition.OPPOSE, 2)
    summary = tally_summary(office=campaign.office, campaign=campaign)
    assert (summary.support, summary.oppose, summary.callers, summary.calls) == (0, 1, 1, 2)


def test_the_tally_keeps_phone_constituent_and_district(post_signed: Any, campaign: CallInCampaign) -> None:
    constituent: Any = factories.ConstituentFactory.create(
        office=campaign.office, phone="+14155550123", in_district=True
    )
    _choose(post_signed, campaign, "1")
    tally = CallInTally.objects.get()
    assert (tally.constituent, tally.caller_phone, tally.in_district) == (constituent, "+14155550123", True)
    assert tally_summary(office=campaign.office, campaign=campaign).support_in_district == 1


def test_withheld_numbers_are_recorded_but_counted_apart(post_signed: Any, campaign: CallInCampaign) -> None:
    for index in range(2):
        _choose(post_signed, campaign, "1", call_sid=f"CA{index:032x}", caller="Anonymous")
    assert CallInTally.objects.filter(caller_phone="").count() == 2
    summary = tally_summary(office=campaign.office, campaign=campaign)
    assert (summary.support, summary.withheld_support) == (0, 2)


def test_a_tally_only_caller_leaves_no_work_in_the_inbox(post_signed: Any, campaign: CallInCampaign) -> None:
    _choose(post_signed, campaign, "1")
    conversation = Message.objects.get(provider_sid=CALL_SID).conversation
    assert conversation.status == ConversationStatus.CLOSED
    assert not conversation.is_unread


def test_a_tally_does_not_close_a_thread_with_texts(post_signed: Any, campaign: CallInCampaign) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__basic")).status_code == 200
    _choose(post_signed, campaign, "1")
    conversation = Message.objects.get(provider_sid=CALL_SID).conversation
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.is_unread


def test_press_3_leaves_a_message_tagged_with_the_issue(post_signed: Any, campaign: CallInCampaign) -> None:
    body = _choose(post_signed, campaign, "3")
    assert "<Record " in body
    assert f"topic=c{campaign.pk}" in body
    path = f"/webhooks/twilio/voice/recording/?lang=en-US&topic=c{campaign.pk}&tx=1"
    assert post_signed(path, load("voice_recording_completed__completed")["params"]).status_code == 204
    voice_followups_drain()  # the worker tags the thread
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.details["topic"] == "H.R. 1234"
    assert ConversationTag.objects.filter(conversation=voicemail.conversation, tag=campaign.tag).exists()
    assert not CallInTally.objects.exists()


@pytest.mark.parametrize("digits", [None, "7", "0"])
def test_other_callers_go_on_to_the_usual_menu(
    digits: str | None, post_signed: Any, campaign: CallInCampaign
) -> None:
    body = _choose(post_signed, campaign, digits)
    assert "Thank you for calling the office of Representative Rivera." in body
    assert "<Gather" in body
    assert not CallInTally.objects.exists()


def test_speech_answers_count_too(post_signed: Any, campaign: CallInCampaign) -> None:
    params = {**load("voice_call_received__basic")["params"], "SpeechResult": "I oppose it."}
    post_signed("/webhooks/twilio/voice/", params)
    post_signed(f"/webhooks/twilio/voice/menu/?attempt=1&node=callin-{campaign.pk}&step=1", params)
    assert CallInTally.objects.get().position == CallInPosition.OPPOSE


def test_live_tally_page_and_json_show_counts_to_members_only(
    post_signed: Any, campaign: CallInCampaign, staff_in: Client, django_assert_max_num_queries: Any
) -> None:
    _choose(post_signed, campaign, "1")
    _choose(post_signed, campaign, "2", call_sid="CA" + "4" * 32, caller="+14155550125")
    slug = campaign.office.slug
    with django_assert_max_num_queries(8):
        page = staff_in.get(f"/o/{slug}/voice/call-in/{campaign.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'hx-trigger="every 10s"' in html  # the tally partial polls itself while the campaign is live
    assert "2 callers (50% support)" in html
    data = staff_in.get(f"/o/{slug}/voice/call-in/{campaign.pk}/tally.json").json()
    assert (data["support"], data["oppose"], data["callers"]) == (1, 1, 2)
    with django_assert_max_num_queries(6):
        listing = staff_in.get(f"/o/{slug}/voice/call-in/")
    assert "H.R. 1234" in listing.content.decode()
    other: Any = factories.OfficeFactory.create()
    their_tag: Any = factories.TagFactory.create(office=other)
    foreign = CallInCampaign.objects.create(office=other, tag=their_tag, title="Theirs", prompt_text="x")
    assert staff_in.get(f"/o/{slug}/voice/call-in/{foreign.pk}/").status_code == 404
    assert staff_in.get(f"/o/{slug}/voice/call-in/{foreign.pk}/tally.json").status_code == 404


def test_summaries_for_all_campaigns_and_for_the_issue(post_signed: Any, campaign: CallInCampaign) -> None:
    _choose(post_signed, campaign, "1")
    [summary] = tally_summaries(office=campaign.office)
    assert (summary.title, summary.support, summary.is_active) == ("H.R. 1234", 1, True)
    assert issue_call_in_positions(office=campaign.office, tag=campaign.tag)["support"] == 1


def test_only_one_campaign_per_office_is_active(campaign: CallInCampaign) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        CallInCampaign.objects.create(
            office=campaign.office, tag=campaign.tag, title="Another", prompt_text="x", is_active=True
        )
