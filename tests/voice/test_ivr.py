"""The IVR: greeting, menu by key and by speech, staff in office hours only, information, language, repeat,
invalid or no input, after hours and holidays, and an office with no IVR at all."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from messages.models import Channel, Message
from offices.models import OfficeHoliday, OfficeHours
from offices.selectors import office_is_open
from tests import factories
from tests.voice.conftest import STAFF_NUMBERS, Hotline
from tests.voice.helpers import load
from voice.services.flow import option_for, pressed_digit, spoken_digit

pytestmark = pytest.mark.django_db


def _path(response: Any) -> str:
    return str(response.content, "utf-8")


def _action(body: str, verb: str = "Gather") -> str:
    match = re.search(rf'<{verb} action="([^"]+)"', body)
    assert match, body
    return match.group(1).replace("&amp;", "&")


def test_greeting_then_menu_lists_every_option_with_speech_hints(post_voice: Any, hotline: Hotline) -> None:
    body = _path(post_voice("voice_call_received__basic"))
    assert 'input="dtmf speech"' in body
    assert 'numDigits="1"' in body
    assert 'actionOnEmptyResult="true"' in body
    assert 'hints="health, medicare"' in body
    assert 'language="en-US"' in body
    for prompt in (
        "For health care, press 1.",
        "To talk to our staff, press 2.",
        "Para español, oprima nueve.",
    ):
        assert prompt in body
    assert 'voice="Polly.Joanna"' in body


def test_pressing_a_voicemail_option_records_with_beep_limit_finish_key_and_transcription(
    post_voice: Any, hotline: Hotline
) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__digit"))
    assert "<Record " in body
    for attribute in (
        'maxLength="180"',
        'playBeep="true"',
        'finishOnKey="#"',
        'transcribe="true"',
        'recordingStatusCallbackEvent="completed absent"',
    ):
        assert attribute in body
    assert f"topic=o{hotline.health_option.pk}" in _action(body, "Record")
    assert "Please leave your message after the beep" in body
    call = Message.objects.get(channel=Channel.CALL)
    assert call.details["menu_path"][1] == {
        "step": 1,
        "input": "1",
        "via": "dtmf",
        "menu": "Main",
        "digit": "1",
        "result": "voicemail: Health care",
    }


def test_max_recording_length_comes_from_the_menu_or_the_setting(
    post_voice: Any, hotline: Hotline, settings: Any
) -> None:
    settings.VOICE_MAX_RECORDING_SECONDS = 240
    post_voice("voice_call_received__basic")
    assert 'maxLength="240"' in _path(post_voice("voice_menu_selected__digit"))
    hotline.main.max_recording_seconds = 60
    hotline.main.save()
    assert 'maxLength="60"' in _path(post_voice("voice_menu_selected__digit"))


def test_saying_a_keyword_chooses_its_option(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__speech"))
    assert "<Record " in body
    entry = Message.objects.get(channel=Channel.CALL).details["menu_path"][1]
    assert (entry["via"], entry["input"], entry["digit"]) == ("speech", "Health care, please.", "1")


@pytest.mark.parametrize(
    "name",
    [
        "voice_menu_selected__unknown_digit",
        "voice_menu_selected__garbage_digits",
        "voice_menu_selected__no_input",
    ],
)
def test_invalid_or_no_input_replays_the_menu_then_takes_a_message(
    name: str, post_voice: Any, post_signed: Any, hotline: Hotline
) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice(name))
    assert "Sorry, I did not understand that." in body
    assert "<Gather" in body
    assert "attempt=2" in _action(body)
    assert "step=2" in _action(body)
    assert "Thank you for calling the office" not in body  # the notice and options, not the greeting again
    # The third try (the menu's max_attempts) goes to voicemail: everyone gets to leave a message.
    path = f"/webhooks/twilio/voice/menu/?attempt=3&node=menu-{hotline.main.pk}&step=3"
    body = post_signed(path, load(name)["params"]).content.decode()
    assert "<Record " in body
    results = [entry["result"] for entry in Message.objects.get(channel=Channel.CALL).details["menu_path"]]
    assert results[-1] == "no valid choice after 3 tries: voicemail"


def test_talk_to_staff_dials_every_number_during_office_hours(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__digit", Digits="2"))
    assert '<Dial action="/webhooks/twilio/voice/dial/?menu=' in body
    assert 'timeout="15"' in body
    assert 'answerOnBridge="true"' in body
    for number in STAFF_NUMBERS:
        assert f">{number}</Number>" in body
    assert "voice/dial/answered/?call=CA" in body


def test_talk_to_staff_after_hours_goes_to_voicemail(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    OfficeHours.objects.filter(office=hotline.office).delete()
    body = _path(post_voice("voice_menu_selected__digit", Digits="2"))
    assert "<Dial" not in body
    assert "<Record " in body
    assert "No one is available to take your call right now." in body


def test_office_information_is_spoken_then_the_menu_again(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__digit", Digits="3"))
    assert "We are at 100 Main Street" in body
    assert "<Gather" in body
    assert "For health care, press 1." in body


def test_language_option_switches_to_the_spanish_menu(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__digit", Digits="9"))
    assert "Gracias por llamar." in body
    assert 'voice="Polly.Lupe"' in body
    assert 'language="es-US"' in body
    assert f"node=menu-{hotline.spanish.pk}" in _action(body)
    assert "Para dejar un mensaje, oprima uno." in body


def test_spanish_voicemail_is_not_transcribed_by_twilio(
    post_signed: Any, post_voice: Any, hotline: Hotline
) -> None:
    post_voice("voice_call_received__basic")
    path = f"/webhooks/twilio/voice/menu/?attempt=1&node=menu-{hotline.spanish.pk}&step=2"
    body = post_signed(path, {**load("voice_menu_selected__digit")["params"], "Digits": "1"}).content.decode()
    assert "<Record " in body
    assert "transcribe=" not in body
    assert "lang=es-US" in body
    assert "tx=0" in body


def test_repeat_plays_the_greeting_and_menu_again(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__basic")
    body = _path(post_voice("voice_menu_selected__digit", Digits="0"))
    assert "Thank you for calling the office of Representative Rivera." in body
    assert "<Gather" in body


def test_after_hours_goes_straight_to_voicemail_with_the_after_hours_greeting(
    post_voice: Any, hotline: Hotline
) -> None:
    OfficeHours.objects.filter(office=hotline.office).delete()
    body = _path(post_voice("voice_call_received__basic"))
    assert "<Gather" not in body
    assert "<Record " in body
    assert "Our office is closed. Our hours are nine to five" in body
    call = Message.objects.get(channel=Channel.CALL)
    assert call.details["after_hours"] is True
    assert call.details["menu_path"][0]["result"] == "after hours: voicemail"


def test_a_holiday_is_after_hours_even_within_opening_hours(post_voice: Any, hotline: Hotline) -> None:
    local_today = timezone.now().astimezone(zoneinfo.ZoneInfo(hotline.office.time_zone))
    OfficeHoliday.objects.create(office=hotline.office, date=local_today.date(), name="Thanksgiving")
    assert "Our office is closed." in _path(post_voice("voice_call_received__basic"))


def test_office_hours_are_read_in_the_office_time_zone(office: Any) -> None:
    office.time_zone = "America/Los_Angeles"
    office.save()
    # Monday 17:30 in Los Angeles is Tuesday 01:30 UTC.
    OfficeHours.objects.create(office=office, weekday=0, opens_at=dt.time(9), closes_at=dt.time(18))
    monday_evening = dt.datetime(2026, 11, 24, 1, 30, tzinfo=dt.UTC)
    assert office_is_open(office=office, at=monday_evening)
    assert not office_is_open(office=office, at=monday_evening + dt.timedelta(hours=1))  # 18:30: closed
    assert not office_is_open(office=office, at=dt.datetime(2026, 11, 23, 16, 59, tzinfo=dt.UTC))  # 08:59
    OfficeHoliday.objects.create(office=office, date=dt.date(2026, 11, 23), name="Holiday")
    assert not office_is_open(office=office, at=monday_evening)


def test_office_without_an_ivr_still_answers_and_takes_a_message(
    office: Any, phone_number: Any, post_signed: Any
) -> None:
    body = post_signed(
        "/webhooks/twilio/voice/", load("voice_call_received__basic")["params"]
    ).content.decode()
    assert "You have reached the office of Representative Jordan Rivera." in body
    assert "<Record " in body


def test_uploaded_greeting_is_played_through_a_signed_public_url(post_voice: Any, hotline: Hotline) -> None:
    hotline.main.greeting_audio.save("welcome.mp3", ContentFile(b"ID3-fake-mp3"), save=True)
    body = _path(post_voice("voice_call_received__basic"))
    match = re.search(r"<Play>([^<]+)</Play>", body)
    assert match
    assert "Thank you for calling the office" not in body
    response = Client().get(match.group(1))  # Twilio fetches it with no login
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.getvalue() == b"ID3-fake-mp3"
    assert Client().get(match.group(1)[:-8] + "tampered/").status_code == 403
    hotline.main.greeting_audio.save("new.mp3", ContentFile(b"ID3-new"), save=True)
    assert Client().get(match.group(1)).status_code == 404  # a replaced upload's old link is dead


def test_pressed_and_spoken_digits() -> None:
    assert [pressed_digit(d) for d in ("1", "1#", " 7 ", "*", "12", "a", "", None)] == [
        "1",
        "1",
        "7",
        "*",
        None,
        None,
        None,
        None,
    ]
    assert [spoken_digit(s) for s in ("One.", "uno", "9", "two please", "")] == ["1", "1", "9", None, None]


def test_keywords_match_whole_words_only(hotline: Hotline) -> None:
    options = list(hotline.main.options.all())
    assert option_for(options, digits=None, speech="my MEDICARE claim").digit == "1"  # type: ignore[union-attr]  # None fails
    assert option_for(options, digits=None, speech="unhealthy") is None
    assert option_for(options, digits="5", speech="health") is None  # a key wins over speech


def test_admin_previews_every_answer_as_twiml(hotline: Hotline) -> None:
    admin: Any = factories.MembershipFactory.create(office=hotline.office, role="admin", user__is_staff=True)
    client = Client()
    client.force_login(admin.user)
    response = client.get(f"/admin/offices/ivrmenu/{hotline.main.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Caller presses 2: Talk to staff" in page
    assert "&lt;Dial" in page
    assert "&lt;Gather" in page
    assert "Call starts (after hours or holiday)" in page
