"""Twilio webhooks for the voice hotline. Each one: verify the signature → parse → call one service → answer.

The endpoints (all under ``/webhooks/twilio/voice/``; docs/twilio-setup.md shows how to point a number here):

==========================  ==========================  ============================================
view                        path                        Twilio sends it
==========================  ==========================  ============================================
``call_received``           ``voice/``                  a call comes in (the number's Voice URL)
``menu_selected``           ``voice/menu/``             ``<Gather action>``: the caller's choice
``dial_completed``          ``voice/dial/``             ``<Dial action>``: did staff answer?
``staff_answered``          ``voice/dial/answered/``    ``<Number url>``: a staff phone picked up
``voicemail_recorded``      ``voice/record/``           ``<Record action>``: the caller finished
``recording_completed``     ``voice/recording/``        ``recordingStatusCallback``
``transcription_received``  ``voice/transcription/``    ``transcribeCallback``
``call_status_changed``     ``voice/status/``           the number's call status callback
``greeting_audio``          ``voice/audio/<token>/``    ``<Play>``: an uploaded greeting (GET)
==========================  ==========================  ============================================

The TwiML answers (call, menu, dial, record, staff) are built from the service's step by
``voice.twiml.render``; the callbacks answer 204. No outbound network I/O happens here:
audio downloads and transcription are queued on commit. Malformed requests get a 400 with the reason.
"""

from __future__ import annotations

import logging

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
)
from django.http.response import HttpResponseBase

from common.ids import MAX_ID_DIGITS
from messages.twilio.errors import PayloadError
from messages.twilio.payloads import is_sid
from messages.twilio.signatures import signed_for_office_id, twilio_signature_required, twilio_webhook
from messages.twilio.twiml import TWIML_CONTENT_TYPE
from offices.selectors import ivr_audio_get
from voice import services as voice
from voice.services.steps import Step
from voice.twilio.payloads import (
    CALL_SID_PREFIXES,
    InboundCall,
    parse_call_status,
    parse_dial_result,
    parse_gather_result,
    parse_inbound_call,
    parse_record_result,
    parse_recording_status,
    parse_transcription_result,
)
from voice.twiml import audio_ref_from_token, render

logger = logging.getLogger(__name__)

MAX_STEP = 100
MAX_ATTEMPT = 10


def _twiml(step: Step) -> HttpResponse:
    return HttpResponse(render(step), content_type=TWIML_CONTENT_TYPE)


def _bad_request(exc: PayloadError) -> HttpResponse:
    # Twilio does not retry a 4xx; the body explains the rejection to whoever reads Twilio's debugger.
    logger.warning("rejected Twilio voice webhook: %s", exc)
    return HttpResponse(f"Bad request: {exc}\n", status=400, content_type="text/plain; charset=utf-8")


def _context(request: HttpRequest) -> InboundCall | None:
    """The caller and office numbers, which Twilio sends with every request about a call's own leg
    (https://www.twilio.com/docs/usage/webhooks/voice-webhooks#incoming-voice-call). None if absent."""
    try:
        return parse_inbound_call(request.POST)
    except PayloadError:
        return None


_MAX_INT_DIGITS = 6  # the counters read from our callback URLs are small; a longer one is not ours


def _int(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    value = request.GET.get(name, "")
    return min(max(int(value), low), high) if value.isdigit() and len(value) <= _MAX_INT_DIGITS else default


def _query(request: HttpRequest) -> dict[str, str]:
    return {key: request.GET.get(key, "")[:40] for key in ("topic", "lang", "tx", "menu")}


@twilio_signature_required
def call_received(request: HttpRequest) -> HttpResponse:
    try:
        call = parse_inbound_call(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    return _twiml(voice.call_receive(call=call).step)


@twilio_signature_required
def menu_selected(request: HttpRequest) -> HttpResponse:
    try:
        gather = parse_gather_result(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    result = voice.menu_choose(
        gather=gather,
        context=_context(request),
        node=request.GET.get("node", "")[:40],
        step=_int(request, "step", default=1, low=1, high=MAX_STEP),
        attempt=_int(request, "attempt", default=1, low=1, high=MAX_ATTEMPT),
    )
    return _twiml(result.step)


@twilio_signature_required
def dial_completed(request: HttpRequest) -> HttpResponse:
    try:
        dial = parse_dial_result(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    menu = request.GET.get("menu", "")
    result = voice.dial_result_apply(
        dial=dial,
        context=_context(request),
        menu_id=int(menu) if menu.isdigit() and len(menu) <= MAX_ID_DIGITS else None,
        step=_int(request, "step", default=1, low=1, high=MAX_STEP),
    )
    return _twiml(result.step)


# The staff leg's To is the staff phone: the callback is about the caller's call, named by its SID in the URL.
@twilio_webhook(routed_by=None)
def staff_answered(request: HttpRequest) -> HttpResponse:
    try:
        leg = parse_inbound_call(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    call_sid = request.GET.get("call", "")
    if not is_sid(call_sid, CALL_SID_PREFIXES):
        return _bad_request(PayloadError("the URL does not name the caller's call"))
    result = voice.staff_answer_record(
        leg=leg, call_sid=call_sid, signed_for_office_id=signed_for_office_id(request)
    )
    return _twiml(result.step)


@twilio_signature_required
def voicemail_recorded(request: HttpRequest) -> HttpResponse:
    try:
        record = parse_record_result(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    plan = voice.plan_from_query(_query(request))
    return _twiml(voice.voicemail_record(record=record, context=_context(request), plan=plan).step)


@twilio_signature_required
def recording_completed(request: HttpRequest) -> HttpResponse:
    try:
        recording = parse_recording_status(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    voice.recording_status_apply(
        recording=recording,
        plan=voice.plan_from_query(_query(request)),
        signed_for_office_id=signed_for_office_id(request),
    )
    return HttpResponse(status=204)


@twilio_signature_required
def transcription_received(request: HttpRequest) -> HttpResponse:
    try:
        transcription = parse_transcription_result(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    text = transcription.transcription_text or ""
    if len(text) > voice.MAX_TRANSCRIPT_CHARS:
        # Twilio transcribes at most two minutes of speech; this is not one of its transcripts.
        limit = voice.MAX_TRANSCRIPT_CHARS
        return _bad_request(
            PayloadError(f"TranscriptionText is {len(text)} characters; refusing more than {limit}")
        )
    voice.transcription_apply(
        transcription=transcription,
        plan=voice.plan_from_query(_query(request)),
        signed_for_office_id=signed_for_office_id(request),
    )
    return HttpResponse(status=204)


@twilio_signature_required
def call_status_changed(request: HttpRequest) -> HttpResponse:
    try:
        status = parse_call_status(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    voice.call_status_apply(status=status, context=_context(request))
    return HttpResponse(status=204)


def greeting_audio(request: HttpRequest, token: str) -> HttpResponseBase:
    """An uploaded IVR greeting, fetched by Twilio for ``<Play>``: public (every caller hears it), but only
    through the signed token in the TwiML, so uploads cannot be listed or guessed. A bad token is 403."""
    ref = audio_ref_from_token(token)
    if ref is None:
        return HttpResponseForbidden("Invalid or expired audio link")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    audio = ivr_audio_get(office_id=ref.office_id, menu_id=ref.menu_id, field=ref.field)
    if audio is None or audio.name != ref.name:
        raise Http404("No such audio.")
    content_type = "audio/mpeg" if audio.name.lower().endswith(".mp3") else "audio/wav"
    response = FileResponse(audio.open("rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    # The URL changes with every upload, so Twilio (and any cache) may keep it for a day.
    response["Cache-Control"] = "public, max-age=86400"
    return response
