"""Place a whole simulated phone call, with no Twilio account: signed voice webhooks, driven by the TwiML.

:func:`run_call` plays Twilio's part in a call to the hotline. It posts the incoming-call webhook, reads the
TwiML the app answers with, and follows it verb by verb as Twilio would: it answers each ``<Gather>`` with
the next scripted input, rings (or not) the ``<Dial>`` numbers and requests the staff leg's ``<Number url>``,
"records" at ``<Record>`` (the action, then the recording status and transcription callbacks), and finally
posts the call status callback. Every request carries Twilio's form fields (built by
``voice.twilio.payloads``) and a valid Twilio signature, so the real path runs (signature check, parsing,
services, workers).

Where the requests go is a :class:`Transport`: :func:`http_transport` posts over HTTP (the demo's
"place a simulated call" page and the benchmark); tests pass one around Django's test client.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from django.urls import reverse

from demo.sms import PLACEHOLDER_ACCOUNT_SID, SUCCESS_STATUSES, SimulatorError
from messages.twilio.signatures import SIGNATURE_HEADER, sign
from voice.twilio.payloads import (
    CallLeg,
    call_status_form,
    dial_result_form,
    gather_form,
    inbound_call_form,
    record_result_form,
    recording_status_form,
    recording_url_for,
    transcription_form,
)

TIMEOUT_SECONDS = 10
MAX_VERBS = 40
SILENCE = ""
ANONYMOUS = "Anonymous"
# Twilio transcribes recordings of 2 to 120 seconds; it sends no transcription for others.
TRANSCRIBED_SECONDS = range(2, 121)

#: ``post(path, params) -> (status code, response body)``; ``path`` is absolute (``/webhooks/...?...``).
Transport = Callable[[str, Sequence[tuple[str, str]]], tuple[int, str]]


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class CallScript:
    """What the simulated caller does. ``inputs`` answer the menus in order: keys ("1"), ``"say:health"``
    for speech, or ``""`` for silence; menus beyond the list hear silence."""

    to_number: str
    from_number: str = "+14155550123"  # raw caller ID; "Anonymous" or "" for a withheld number
    inputs: tuple[str, ...] = ()
    staff_answers: bool = False
    voicemail_seconds: int = 20  # 0: the caller hangs up at the beep (an empty recording)
    voicemail_text: str = "Hello, I am calling about the clean water bill. Please call me back."
    account_sid: str = PLACEHOLDER_ACCOUNT_SID
    call_sid: str = field(default_factory=lambda: new_sid("CA"))


@dataclass
class Exchange:
    path: str
    status: int
    seconds: float
    returns_twiml: bool


@dataclass
class CallTrace:
    """What happened: every request made, and the SIDs the simulated Twilio assigned."""

    call_sid: str
    exchanges: list[Exchange] = field(default_factory=list)
    recording_sids: list[str] = field(default_factory=list)
    transcription_sids: list[str] = field(default_factory=list)
    dial_call_sid: str = ""
    heard: list[str] = field(default_factory=list)  # every <Say> text, in order
    ended_by: str = ""  # "hangup", "end of document", "error", "too many verbs"

    @property
    def ok(self) -> bool:
        return all(exchange.status in SUCCESS_STATUSES for exchange in self.exchanges)


class _Call:
    def __init__(self, script: CallScript, post: Transport) -> None:
        self.script = script
        self.post_raw = post
        self.trace = CallTrace(call_sid=script.call_sid)
        self.leg = CallLeg(
            account_sid=script.account_sid,
            call_sid=script.call_sid,
            from_number=script.from_number,
            to_number=script.to_number,
        )
        self.inputs = list(script.inputs)
        self.started = time.monotonic()

    # --- requests ---------------------------------------------------------------------------------------

    def post(self, path: str, params: Sequence[tuple[str, str]], *, twiml: bool) -> str | None:
        began = time.monotonic()
        status, body = self.post_raw(path, params)
        self.trace.exchanges.append(Exchange(path, status, time.monotonic() - began, twiml))
        if status not in SUCCESS_STATUSES:
            self.trace.ended_by = "error"
            return None
        return body

    # --- the call ------------------------------------------------------------------------------------------

    def run(self) -> CallTrace:
        twiml = self.post(reverse("twilio:voice-received"), inbound_call_form(self.leg), twiml=True)
        for _ in range(MAX_VERBS):
            if twiml is None:
                break
            twiml = self.follow(twiml)
        else:
            self.trace.ended_by = "too many verbs"
        duration = max(1, round(time.monotonic() - self.started) + self.script.voicemail_seconds)
        status = call_status_form(self.leg, call_status="completed", call_duration=duration)
        self.post(reverse("twilio:voice-status"), status, twiml=False)
        return self.trace

    def follow(self, twiml: str) -> str | None:
        """Run one TwiML document; returns the next document, or None when the call is over."""
        root = ET.fromstring(twiml)  # noqa: S314 - our own server's answer, not untrusted input
        for verb in root:
            if verb.tag == "Say":
                self.trace.heard.append(verb.text or "")
            elif verb.tag == "Gather":
                self.trace.heard.extend(child.text or "" for child in verb if child.tag == "Say")
                return self.gather(verb)
            elif verb.tag == "Dial":
                return self.dial(verb)
            elif verb.tag == "Record":
                result = self.record(verb)
                if result is not None:
                    return result
            elif verb.tag == "Redirect":
                return self.post(
                    verb.text or "", inbound_call_form(self.leg, call_status="in-progress"), twiml=True
                )
            elif verb.tag in ("Hangup", "Reject"):
                self.trace.ended_by = "hangup"
                return None
        self.trace.ended_by = self.trace.ended_by or "end of document"
        return None

    def gather(self, verb: ET.Element) -> str | None:
        answer = self.inputs.pop(0) if self.inputs else SILENCE
        if answer.startswith("say:"):
            params = gather_form(self.leg, speech_result=answer[4:], confidence=0.92)
        else:
            params = gather_form(self.leg, digits=answer or None)
        return self.post(verb.get("action", ""), params, twiml=True)

    def dial(self, verb: ET.Element) -> str | None:
        numbers = [number for number in verb if number.tag == "Number"]
        if self.script.staff_answers and numbers:
            leg_sid = new_sid("CA")
            number = numbers[0]
            if number.get("url"):
                # The staff leg: its own call SID, from the caller ID shown to staff, to the staff phone.
                staff_leg = CallLeg(
                    account_sid=self.script.account_sid,
                    call_sid=leg_sid,
                    from_number=self.script.from_number,
                    to_number=(number.text or "").strip(),
                    direction="outbound-dial",
                    parent_call_sid=self.script.call_sid,
                )
                self.post(
                    number.get("url", ""), inbound_call_form(staff_leg, call_status="in-progress"), twiml=True
                )
            self.trace.dial_call_sid = leg_sid
            params = dial_result_form(
                self.leg, dial_call_status="completed", dial_call_sid=leg_sid, dial_call_duration=42
            )
        else:
            params = dial_result_form(self.leg, dial_call_status="no-answer")
        return self.post(verb.get("action", ""), params, twiml=True)

    def record(self, verb: ET.Element) -> str | None:
        recording_sid = new_sid("RE")
        url = recording_url_for(self.script.account_sid, recording_sid)
        seconds = self.script.voicemail_seconds
        callback = verb.get("recordingStatusCallback", "")
        recording = recording_status_form(
            self.leg,
            recording_sid=recording_sid,
            recording_url=url,
            recording_status="completed" if seconds else "absent",
            recording_duration=seconds,
        )
        if seconds <= 0:
            # An empty recording: no action request; Twilio runs the verbs after <Record>
            # (https://www.twilio.com/docs/voice/twiml/record#action).
            if callback:
                self.post(callback, recording, twiml=False)
            return None
        self.trace.recording_sids.append(recording_sid)
        action = record_result_form(self.leg, recording_url=url, recording_duration=seconds, digits="#")
        next_twiml = self.post(verb.get("action", ""), action, twiml=True)
        if callback:
            self.post(callback, recording, twiml=False)
        transcribe_callback = verb.get("transcribeCallback", "")
        if verb.get("transcribe") == "true" and transcribe_callback and seconds in TRANSCRIBED_SECONDS:
            transcription_sid = new_sid("TR")
            self.trace.transcription_sids.append(transcription_sid)
            transcription = transcription_form(
                self.leg,
                recording_sid=recording_sid,
                recording_url=url,
                transcription_sid=transcription_sid,
                transcription_status="completed",
                transcription_text=self.script.voicemail_text,
            )
            self.post(transcribe_callback, transcription, twiml=False)
        return next_twiml


def run_call(script: CallScript, post: Transport) -> CallTrace:
    """Play Twilio's part in one call, start to finish. Makes every request through ``post``."""
    return _Call(script, post).run()


def http_transport(base_url: str, auth_token: str, *, session: requests.Session | None = None) -> Transport:
    """Posts signed requests to ``base_url`` (the app's ``PUBLIC_BASE_URL``) over HTTP."""
    if not auth_token:
        raise SimulatorError(
            "No Twilio auth token: the webhooks reject unsigned requests. Set TWILIO_AUTH_TOKEN (any value "
            "works for the offline demo, as long as the server uses the same one)."
        )
    if not base_url.startswith(("http://", "https://")):
        raise SimulatorError(f"The base URL {base_url!r} must start with http:// or https://.")
    http = session or requests.Session()
    base = base_url.rstrip("/")

    def post(path: str, params: Sequence[tuple[str, str]]) -> tuple[int, str]:
        url = base + path
        headers = {
            SIGNATURE_HEADER: sign(url, list(params), auth_token),
            "User-Agent": "civicdesk-simulator/1.0",
        }
        try:
            response = http.post(
                url, data=list(params), headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
        except requests.RequestException as exc:
            return 599, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text

    return post
