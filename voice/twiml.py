"""TwiML for the voice hotline, built with the SDK's ``VoiceResponse`` (never string templates).

:func:`render` spells a :mod:`step <voice.services.steps>` in TwiML, including every callback URL.
URLs are absolute paths (``/webhooks/twilio/voice/menu/?node=…``): Twilio resolves them against the URL it
requested, so they follow whatever public origin the number's webhook uses, and their query strings are
covered by the request signature like the rest of the URL. References:
https://www.twilio.com/docs/voice/twiml (verbs) and
https://www.twilio.com/docs/usage/webhooks/webhooks-security (the signature covers the full URL).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import lru_cache
from urllib.parse import urlencode

from django.core import signing
from django.urls import get_urlconf, reverse
from twilio.twiml.voice_response import Gather, VoiceResponse

from messages.twilio.twiml import xml_safe_text
from voice.services.steps import (
    AnnounceStep,
    AudioRef,
    DialStep,
    HangupStep,
    MenuStep,
    RecordStep,
    Step,
    Utterance,
)
from voice.services.voicemail import VoicemailPlan, plan_query

AUDIO_SIGNING_SALT = "civicdesk.voice.ivr-audio"
# Seconds of silence that end a voicemail. Twilio's default of 5 cuts off callers who pause to think.
RECORD_SILENCE_TIMEOUT = 10


def url(name: str, **query: object) -> str:
    path = _path(name, get_urlconf())
    params = {key: str(value) for key, value in query.items() if value is not None and value != ""}
    return f"{path}?{urlencode(sorted(params.items()))}" if params else path


@lru_cache(maxsize=64)
def _path(name: str, urlconf: str | None) -> str:
    return reverse(f"twilio:{name}", urlconf=urlconf)


def audio_token(ref: AudioRef) -> str:
    """A signed, unguessable token naming one uploaded IVR recording (the file name changes per upload)."""
    return signing.dumps(
        [ref.office_id, ref.menu_id, ref.field, ref.name], salt=AUDIO_SIGNING_SALT, compress=True
    )


def audio_ref_from_token(token: str) -> AudioRef | None:
    try:
        office_id, menu_id, field, name = signing.loads(token, salt=AUDIO_SIGNING_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not all(isinstance(value, int) for value in (office_id, menu_id)):
        return None
    if not (isinstance(field, str) and isinstance(name, str)):
        return None
    return AudioRef(office_id, menu_id, field, name)


def _utter(parent: VoiceResponse | Gather, utterance: Utterance) -> None:
    if utterance.audio is not None:
        parent.play(reverse("twilio:voice-audio", args=[audio_token(utterance.audio)]))
    elif utterance.text.strip():
        parent.say(xml_safe_text(utterance.text), voice=utterance.voice, language=utterance.language)


def _menu(response: VoiceResponse, step: MenuStep) -> None:
    gather = response.gather(
        input="dtmf speech" if step.speech else "dtmf",
        action=url("voice-menu", node=step.node, step=step.step, attempt=step.attempt),
        method="POST",
        num_digits=1,
        timeout=step.timeout,
        # Call the action on silence too, so "no input" is handled (and counted) like a wrong key
        # (https://www.twilio.com/docs/voice/twiml/gather#actiononemptyresult).
        action_on_empty_result=True,
        language=step.language if step.speech else None,
        hints=xml_safe_text(", ".join(step.hints))[:1000] if step.speech and step.hints else None,
        speech_timeout="auto" if step.speech else None,
    )
    for utterance in step.say:
        _utter(gather, utterance)


def _dial(response: VoiceResponse, step: DialStep) -> None:
    for utterance in step.say:
        _utter(response, utterance)
    dial = response.dial(
        action=url("voice-dial", step=step.step, menu=step.menu_id),
        method="POST",
        timeout=step.timeout,
        # The caller hears ringing, not silence, until a staff phone answers
        # (https://www.twilio.com/docs/voice/twiml/dial#answeronbridge).
        answer_on_bridge=True,
    )
    for number in step.numbers:
        # Requested on the staff leg when it answers: tells us who picked up, and whispers to them.
        dial.number(number, url=url("voice-staff-answered", call=step.call_sid), method="POST")


def _record(response: VoiceResponse, step: RecordStep) -> None:
    for utterance in step.say:
        _utter(response, utterance)
    plan = VoicemailPlan(
        topic=step.topic,
        language=step.language,
        twilio_transcribes=step.twilio_transcribes,
        menu_id=step.menu_id,
    )
    query = plan_query(plan)
    response.record(
        action=url("voice-record", step=step.step, **query),
        method="POST",
        max_length=step.max_seconds,
        play_beep=True,
        finish_on_key="#",
        timeout=RECORD_SILENCE_TIMEOUT,
        recording_status_callback=url("voice-recording", **query),
        recording_status_callback_method="POST",
        # "absent" tells us about empty recordings too, which never reach the action URL
        # (https://www.twilio.com/docs/voice/twiml/record#recordingstatuscallbackevent).
        recording_status_callback_event="completed absent",
        transcribe=True if step.twilio_transcribes else None,
        transcribe_callback=url("voice-transcription", **query) if step.twilio_transcribes else None,
    )
    # Reached only when the recording is empty: Twilio then skips the action and runs the next verb.
    _utter(response, step.goodbye)
    response.hangup()


def render(step: Step) -> str:
    """The TwiML document for ``step``.

    Steps are frozen values built from the office's cached voice configuration, and a document depends on
    nothing else, so the documents of recent steps are kept (the SDK's XML building is ~1 ms a document,
    and every caller of an office gets the same few). Steps that carry something unhashable are rendered
    every time.
    """
    try:
        return _render_cached(step)
    except TypeError:  # an unhashable field
        return str(_response(step))


@lru_cache(maxsize=1024)
def _render_cached(step: Step) -> str:
    return str(_response(step))


def render_pretty(step: Step) -> str:
    """The same document, indented for people to read (the admin's preview)."""
    element = _response(step).xml()
    ET.indent(element, space="  ")
    return ET.tostring(element, encoding="unicode")


def _response(step: Step) -> VoiceResponse:
    response = VoiceResponse()
    if isinstance(step, MenuStep):
        _menu(response, step)
    elif isinstance(step, DialStep):
        _dial(response, step)
    elif isinstance(step, RecordStep):
        _record(response, step)
    elif isinstance(step, HangupStep):
        for utterance in step.say:
            _utter(response, utterance)
        response.hangup()
    elif isinstance(step, AnnounceStep):
        for utterance in step.say:
            _utter(response, utterance)
    return response
