"""Each voice webhook through the signed HTTP path: one check per fixture, signatures, bad input, sockets."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from constituents.models import Constituent
from messages.models import Channel, Conversation, Message
from messages.twilio.signatures import sign
from tests.messages.twilio.webhook import post_signed_in_parallel
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALL_SID, load, request_for, voice_fixture_names
from voice.models import CallOutcome, ParkedVoiceCallback

pytestmark = pytest.mark.django_db

TWIML_ROUTES = {"voice-received", "voice-menu", "voice-dial", "voice-staff-answered", "voice-record"}
SIGNED_ROUTES = sorted(TWIML_ROUTES | {"voice-recording", "voice-transcription", "voice-status"})


@pytest.mark.parametrize("name", voice_fixture_names())
def test_each_voice_fixture_gets_its_documented_answer(name: str, post_voice: Any) -> None:
    """The call's own webhook first (as in life), then the fixture: each answers as its file says."""
    data = load(name)
    if data["route"] not in ("voice-received", "voice-status"):
        post_voice("voice_call_received__basic")
    response = post_voice(name)
    if response.status_code == 200:
        assert data["route"] in TWIML_ROUTES
        assert response["Content-Type"].startswith("text/xml")
        assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response>')
    elif response.status_code == 400:
        assert response.content.startswith(b"Bad request: ")


@pytest.mark.parametrize("route", SIGNED_ROUTES)
def test_unsigned_or_badly_signed_voice_webhooks_are_refused_and_change_nothing(
    route: str, hotline: Hotline, post_signed: Any
) -> None:
    path, params, _ = request_for("voice_call_received__basic", hotline.ids)
    path = reverse(f"twilio:{route}")
    assert Client().post(path, params).status_code == 403
    assert post_signed(path, params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    assert post_signed(path, params, token="another-accounts-token").status_code == 403
    assert Client().get(path).status_code == 405
    assert Message.objects.count() == 0
    assert Constituent.objects.count() == 0


def test_signature_covers_our_callback_query_string(hotline: Hotline, post_voice: Any) -> None:
    """Twilio signs the full URL: a menu answer replayed against another menu node no longer validates."""
    post_voice("voice_call_received__basic")
    path, params, _ = request_for("voice_menu_selected__digit", hotline.ids)
    signature = sign(settings.PUBLIC_BASE_URL + path, list(params.items()), settings.TWILIO_AUTH_TOKEN)
    tampered = path.replace(f"menu-{hotline.main.pk}", f"menu-{hotline.spanish.pk}")
    assert tampered != path
    response = Client().post(
        tampered,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403


def test_incoming_call_is_stored_once_in_the_callers_thread(post_voice: Any, hotline: Hotline) -> None:
    for _ in range(3):
        response = post_voice("voice_call_received__basic")
    body = response.content.decode()
    assert "<Gather" in body
    assert f"node=menu-{hotline.main.pk}" in body
    assert "Thank you for calling the office of Representative Rivera." in body
    call = Message.objects.get()
    assert (call.channel, call.provider_sid, call.direction) == (Channel.CALL, CALL_SID, "inbound")
    assert call.conversation.constituent.phone == "+14155550123"
    assert call.conversation.constituent.carrier_city == "SAN FRANCISCO"
    assert call.details["outcome"] == CallOutcome.IN_PROGRESS
    assert call.details["menu_path"] == [{"step": 0, "menu": "", "result": "Main: menu"}]
    assert call.processed_at is not None  # never goes through SMS keyword processing
    conversation = call.conversation
    assert conversation.last_message_channel == Channel.CALL
    assert not conversation.is_unread  # a call alone asks nothing of staff


@pytest.mark.parametrize(
    "name",
    [
        "voice_call_received__anonymous",
        "voice_call_received__withheld_placeholder",
        "voice_call_received__empty_from",
    ],
)
def test_withheld_caller_ids_each_get_their_own_anonymous_constituent(name: str, post_voice: Any) -> None:
    post_voice(name)
    post_voice(name, CallSid="CA" + "1" * 32)
    constituents = list(Constituent.objects.all())
    assert len(constituents) == 2
    assert all(c.phone == "" for c in constituents)
    assert Conversation.objects.count() == 2
    assert all(m.details["caller_withheld"] for m in Message.objects.all())


def test_call_to_unknown_number_is_answered_politely_and_stores_nothing(post_voice: Any) -> None:
    body = post_voice("voice_call_received__unknown_number").content.decode()
    assert "not accepting calls" in body
    assert body.endswith("<Hangup /></Response>")
    assert Message.objects.count() == 0
    assert Constituent.objects.count() == 0


def test_call_to_a_number_with_voice_disabled_is_not_taken(post_voice: Any, hotline: Hotline) -> None:
    hotline.number.voice_enabled = False
    hotline.number.save()
    assert "not accepting calls" in post_voice("voice_call_received__basic").content.decode()
    assert Message.objects.count() == 0


def test_callbacks_for_an_unknown_call_are_parked_or_stored_from_what_they_carry(post_voice: Any) -> None:
    post_voice("voice_recording_completed__unknown_call")
    assert ParkedVoiceCallback.objects.filter(call_sid="CA" + "f" * 32, applied_at__isnull=True).count() == 1
    post_voice("voice_call_status__unknown_call")
    call = Message.objects.get(provider_sid="CA" + "9" * 32)
    assert call.details["outcome"] == CallOutcome.ABANDONED
    assert call.duration_seconds == 12
    post_voice("voice_menu_selected__unknown_call")
    assert Message.objects.filter(provider_sid="CA" + "e" * 32, channel=Channel.CALL).exists()


def test_a_100_kb_transcription_is_refused_and_stores_nothing(post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    response = post_voice(
        "voice_transcription_received__completed", expect=400, TranscriptionText="x" * 100_000
    )
    assert b"refusing more than 10000" in response.content
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()


@pytest.mark.parametrize(
    "name",
    [
        "voice_recording_completed__negative_duration",
        "voice_call_status__negative_duration",
        "voice_dial_completed__negative_duration",
    ],
)
def test_negative_durations_are_a_clear_400(name: str, post_voice: Any) -> None:
    post_voice("voice_call_received__basic")
    assert b"must not be negative" in post_voice(name).content


def test_voice_webhooks_open_no_network_socket(post_voice: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connection.ensure_connection()  # the database connection is the one socket a request may use
    opened: list[Any] = []

    def forbid(self: socket.socket, address: Any) -> None:
        opened.append(address)
        raise AssertionError(f"webhook opened a socket to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", forbid)
    monkeypatch.setattr(socket.socket, "connect_ex", forbid)
    monkeypatch.setattr("common.queueing.enqueue", lambda *args, **kwargs: True)  # the broker is a socket too
    for name in (
        "voice_call_received__basic",
        "voice_menu_selected__digit",
        "voice_voicemail_recorded__basic",
        "voice_recording_completed__completed",
        "voice_transcription_received__completed",
        "voice_call_status__completed",
    ):
        post_voice(name)
    assert opened == []
    assert Message.objects.filter(channel=Channel.VOICEMAIL).count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_copies_of_a_withheld_number_call_store_one_call_and_one_constituent(
    hotline: Hotline,
) -> None:
    path, params, _ = request_for("voice_call_received__anonymous", hotline.ids)
    assert post_signed_in_parallel(path, [params] * 8, threads=8) == [200] * 8
    assert Message.objects.filter(provider_sid=CALL_SID).count() == 1
    assert Constituent.objects.count() == 1
    assert Conversation.objects.count() == 1
