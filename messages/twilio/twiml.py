"""TwiML responses, built with the SDK's ``MessagingResponse``/``VoiceResponse`` (never string templates).

Webhook views return these strings with ``content_type=TWIML_CONTENT_TYPE``.
TwiML reference: https://www.twilio.com/docs/messaging/twiml and https://www.twilio.com/docs/voice/twiml
"""

from __future__ import annotations

import re
from functools import cache

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"

# ElementTree escapes & < > but happily writes control characters that XML 1.0 forbids
# (https://www.w3.org/TR/xml/#charsets); Twilio would then fail to parse the whole document (error 12100).
_XML_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (NUL, most C0 controls, U+FFFE/U+FFFF)."""
    return _XML_INVALID_CHARS.sub("", text)


# --- Messaging ------------------------------------------------------------------------------------


@cache
def empty_messaging_response() -> str:
    """``<Response/>``: acknowledge an incoming message without replying (the usual answer).

    Built by the SDK once per process: rendering it cost every inbound text ~0.1 ms of CPU."""
    return str(MessagingResponse())


def message_response(body: str) -> str:
    """Reply to the incoming message with one text ``body``."""
    response = MessagingResponse()
    response.message(xml_safe_text(body))
    return str(response)


# --- Voice ----------------------------------------------------------------------------------------
# The call flow (greeting, <Gather> menu, <Dial> to staff, <Record> voicemail with transcription)
# is built here with VoiceResponse when the voice issue lands; keep every builder a function that
# returns a string, and pass user-editable text through xml_safe_text().


@cache
def empty_voice_response() -> str:
    """``<Response/>`` for a voice webhook: Twilio ends the call when the document has no verbs."""
    return str(VoiceResponse())
