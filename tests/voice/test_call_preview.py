"""A call in the inbox says what happened ("Call, 2 min, answered by …", "Missed call"), in any webhook order;
a voicemail left on a call keeps its own preview (its transcript, else its length)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messages.models import Channel, Conversation, Message
from tests import factories
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALLER

pytestmark = pytest.mark.django_db

STAFF = "+12025550111"  # the staff phone that picks up in voice_staff_answered__basic


def _thread() -> Conversation:
    return Conversation.objects.get(constituent__phone=CALLER)


def _call_row() -> Message:
    return Message.objects.get(channel=Channel.CALL)


ANSWERED = ("staff", "dial", "status")
ANSWERED_FIXTURES: dict[str, tuple[str, dict[str, str]]] = {
    "staff": ("voice_staff_answered__basic", {}),
    "dial": ("voice_dial_completed__answered", {}),
    "status": ("voice_call_status__completed", {}),
}


@pytest.mark.parametrize("order", list(itertools.permutations(ANSWERED)), ids="-".join)
def test_an_answered_call_previews_its_length_and_who_answered_in_any_order(
    post_voice: Any, hotline: Hotline, order: tuple[str, ...]
) -> None:
    post_voice("voice_call_received__basic")
    assert _thread().last_message_preview == "Call in progress"
    post_voice("voice_menu_selected__digit", Digits="2")
    for event in order:
        name, overrides = ANSWERED_FIXTURES[event]
        post_voice(name, **overrides)
    thread = _thread()
    # The talk time with staff (DialCallDuration 42 s), not the whole call with its menu (75 s).
    assert thread.last_message_preview == f"Call, under a minute, answered by {STAFF}"
    assert thread.last_message_channel == Channel.CALL
    assert not thread.is_unread  # a call alone asks nothing of staff
    assert _call_row().details["preview"] == thread.last_message_preview


def test_a_longer_call_rounds_to_minutes(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    post_voice("voice_call_status__completed", CallDuration="200")  # before the dial result
    post_voice("voice_staff_answered__basic")
    assert _thread().last_message_preview == f"Call, 3 min, answered by {STAFF}"  # the call's 200 s so far
    post_voice("voice_dial_completed__answered", DialCallDuration="130")
    assert _thread().last_message_preview == f"Call, 2 min, answered by {STAFF}"


@pytest.mark.parametrize("status_first", [False, True])
def test_a_call_no_one_answered_is_a_missed_call(
    post_voice: Any, hotline: Hotline, status_first: bool
) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    steps: list[tuple[str, dict[str, str]]] = [
        ("voice_dial_completed__no_answer", {}),
        ("voice_call_status__completed", {}),
    ]
    for name, overrides in reversed(steps) if status_first else steps:
        post_voice(name, **overrides)  # the caller hung up at the beep: no voicemail
    assert _thread().last_message_preview == "Missed call"


def test_a_caller_who_hangs_up_in_the_menu_is_a_missed_call(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_call_status__completed")
    assert _thread().last_message_preview == "Missed call"


@pytest.mark.parametrize(
    "order",
    [
        ("record", "recording", "status"),
        ("status", "recording", "record"),
        ("recording", "status", "record"),
    ],
    ids="-".join,
)
def test_a_voicemail_call_keeps_the_voicemails_preview(
    post_voice: Any, hotline: Hotline, order: tuple[str, ...]
) -> None:
    names = {
        "record": "voice_voicemail_recorded__basic",
        "recording": "voice_recording_completed__completed",
        "status": "voice_call_status__completed",
    }
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit")  # health care: leave a message
    for event in order:
        post_voice(names[event])
    thread = _thread()
    assert (thread.last_message_channel, thread.last_message_preview) == (
        Channel.VOICEMAIL,
        "Voicemail, 0:45",
    )
    post_voice("voice_transcription_received__completed")
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.body
    assert _thread().last_message_preview == " ".join(voicemail.body.split())[:160]


def test_a_call_moves_an_older_thread_and_shows_its_outcome(post_voice: Any, hotline: Hotline) -> None:
    constituent: Any = factories.ConstituentFactory.create(office=hotline.office, phone=CALLER)
    earlier = timezone.now() - timedelta(days=2)
    factories.ConversationFactory.create(
        constituent=constituent,
        last_activity_at=earlier,
        last_message_preview="My housing application",
        last_message_channel=Channel.SMS,
    )
    post_voice("voice_call_received__basic")
    post_voice("voice_call_status__completed")
    thread = _thread()
    assert thread.last_activity_at > earlier
    assert (thread.last_message_channel, thread.last_message_preview) == (Channel.CALL, "Missed call")


def test_a_late_call_webhook_does_not_overwrite_a_newer_message(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    thread = _thread()
    Conversation.objects.filter(pk=thread.pk).update(
        last_activity_at=timezone.now() + timedelta(minutes=1),
        last_message_preview="Missed call",  # a later call, from another webhook
        last_message_channel=Channel.CALL,
    )
    post_voice("voice_menu_selected__digit", Digits="2")
    post_voice("voice_staff_answered__basic")
    assert _thread().last_message_preview == "Missed call"


# --- who answered: the office member whose phone picked up ------------------------------------------------


def _staffer(office: Any, *, username: str = "staff2", phone: str = STAFF, **user: str) -> Any:
    membership: Any = factories.MembershipFactory.create(
        office=office, phone=phone, user__username=username, **{f"user__{k}": v for k, v in user.items()}
    )
    return membership.user


# Every order of the answered call's webhooks, the staff leg's also before the call is stored (parked, then
# applied when the incoming call arrives).
STAFF_ORDERS = [
    *(("received", "menu", *order) for order in itertools.permutations(ANSWERED)),
    ("staff", "received", "menu", "dial", "status"),
    ("status", "staff", "dial", "received", "menu"),
]
EVENTS: dict[str, tuple[str, dict[str, str]]] = {
    "received": ("voice_call_received__basic", {}),
    "menu": ("voice_menu_selected__digit", {"Digits": "2"}),
    "staff": ("voice_staff_answered__basic", {}),
    "dial": ("voice_dial_completed__answered", {"DialCallDuration": "130"}),
    "status": ("voice_call_status__completed", {}),
}


@pytest.mark.parametrize("order", STAFF_ORDERS, ids="-".join)
def test_a_call_answered_on_a_members_phone_names_the_member_in_any_order(
    post_voice: Any, hotline: Hotline, order: tuple[str, ...]
) -> None:
    staffer = _staffer(hotline.office)
    for event in order:
        name, overrides = EVENTS[event]
        post_voice(name, **overrides)
    thread = _thread()
    assert thread.last_message_preview == "Call, 2 min, answered by staff2"
    details = _call_row().details
    assert (details["answered_by"], details["answered_by_user_id"]) == ("staff2", staffer.pk)
    assert details["preview"] == thread.last_message_preview


def test_a_member_with_a_full_name_is_named_by_it(post_voice: Any, hotline: Hotline) -> None:
    _staffer(hotline.office, first_name="Riley", last_name="Nguyen")
    for event in ("received", "menu", "staff", "dial"):
        name, overrides = EVENTS[event]
        post_voice(name, **overrides)
    assert _thread().last_message_preview == "Call, 2 min, answered by Riley Nguyen"


def test_a_phone_that_is_no_members_shows_its_number(post_voice: Any, hotline: Hotline) -> None:
    _staffer(hotline.office, phone="+12025550112")  # the other dialled phone; not the one that picked up
    factories.MembershipFactory.create(office=hotline.office, user__username="nophone")  # phone blank
    for event in ("received", "menu", "staff", "dial"):
        name, overrides = EVENTS[event]
        post_voice(name, **overrides)
    assert _thread().last_message_preview == f"Call, 2 min, answered by {STAFF}"
    assert "answered_by_user_id" not in _call_row().details


def test_another_offices_member_with_the_same_phone_is_not_named(post_voice: Any, hotline: Hotline) -> None:
    other: Any = factories.OfficeFactory.create(slug="beta", name="Beta Office")
    _staffer(other, username="beta-staffer")  # the same phone, in another office
    for event in ("received", "menu", "staff", "dial"):
        name, overrides = EVENTS[event]
        post_voice(name, **overrides)
    assert _thread().last_message_preview == f"Call, 2 min, answered by {STAFF}"
    assert "answered_by_user_id" not in _call_row().details


def test_the_staff_leg_costs_one_query_to_name_the_member(post_voice: Any, hotline: Hotline) -> None:
    _staffer(hotline.office)
    post_voice("voice_call_received__basic")
    post_voice("voice_menu_selected__digit", Digits="2")
    with CaptureQueriesContext(connection) as queries:
        post_voice("voice_staff_answered__basic")
    lookups = [q["sql"] for q in queries.captured_queries if '"offices_membership"' in q["sql"]]
    assert len(lookups) == 1, lookups
    assert _thread().last_message_preview == "Call, answered by staff2"
