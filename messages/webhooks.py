"""Twilio webhooks for texts. Each one: verify the signature → parse → call one service → answer fast.

These requests open no network connection except to PostgreSQL and Redis (the nudge after commit), each
bounded by a timeout; follow-up work that calls out (media, replies) runs in the worker.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse

from messages.services.delivery import delivery_status_apply
from messages.services.intake import message_receive
from messages.twilio.errors import PayloadError
from messages.twilio.payloads import parse_delivery_status, parse_inbound_sms
from messages.twilio.signatures import signed_for_office_id, twilio_signature_required, twilio_webhook
from messages.twilio.twiml import empty_messaging_response

logger = logging.getLogger(__name__)


def _bad_request(exc: PayloadError) -> HttpResponse:
    # Twilio does not retry a 4xx; the body explains the rejection to whoever reads Twilio's debugger.
    logger.warning("rejected Twilio webhook: %s", exc)
    return HttpResponse(f"Bad request: {exc}\n", status=400, content_type="text/plain; charset=utf-8")


@twilio_signature_required
def sms_received(request: HttpRequest) -> HttpResponse:
    try:
        sms = parse_inbound_sms(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    message_receive(sms=sms)
    return HttpResponse(empty_messaging_response(), content_type="text/xml; charset=utf-8")


# A status callback is about our own message, found by its SID: its To is the constituent, not the office.
@twilio_webhook(routed_by=None)
def sms_status(request: HttpRequest) -> HttpResponse:
    try:
        status = parse_delivery_status(request.POST)
    except PayloadError as exc:
        return _bad_request(exc)
    delivery_status_apply(callback=status, signed_for_office_id=signed_for_office_id(request))
    return HttpResponse(status=204)
