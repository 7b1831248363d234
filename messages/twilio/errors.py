"""The project's own errors for everything that crosses the Twilio boundary.

Callers outside ``messages/twilio/`` catch these, never ``twilio.base.exceptions.*`` or ``requests.*``:
the boundary translates vendor failures into three outcomes a state machine can act on
(retry later, give up with a reason staff can read, or reconcile because we do not know).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PayloadError(ValueError):
    """A webhook's form data is missing a required field or carries a malformed value."""


class SendError(Exception):
    """A send or fetch against the Twilio REST API did not succeed.

    ``code`` is Twilio's error code (https://www.twilio.com/docs/api/errors) when Twilio gave one;
    ``reason`` is a sentence a staff member can read in the inbox; ``http_status`` is the HTTP status
    Twilio answered with, or ``None`` for network failures.
    """

    def __init__(self, reason: str, *, code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.http_status = http_status

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(reason={self.reason!r}, code={self.code!r}, http_status={self.http_status!r})"


class RetryableSendError(SendError):
    """Twilio did not accept the request (rate limit, 5xx, connection never made): safe to try again later."""


class PermanentSendError(SendError):
    """Twilio rejected the request for a reason that retrying will not fix (opted out, invalid number...)."""


class UnknownOutcomeError(SendError):
    """The request may have reached Twilio but we never saw the answer (e.g. read timeout).

    Do not resend: the message may already be on its way. Reconcile with
    :func:`messages.twilio.client.list_recent_messages` instead.
    """


class MediaError(Exception):
    """Base class for media download failures (see :mod:`messages.twilio.media`)."""


class MediaRejected(MediaError):
    """The media URL or the response broke a safety rule (host, address, size, type): never retry."""


class MediaNotReady(MediaError):
    """Twilio answered 404: media can lag the webhook by a moment, so retry briefly."""


class MediaTemporaryError(MediaError):
    """A 5xx, 429 or network failure: retry with backoff."""


# Codes a retry will never fix: invalid or unreachable numbers, and the recipient having opted out (21610).
PERMANENT_ERROR_CODES: frozenset[int] = frozenset({21211, 21610, 21612, 21614, 21617, 21635})

# Codes that arrive with a 4xx status but clear up by themselves, so they are retryable.
# 20429: "Too Many Requests" (https://www.twilio.com/docs/api/errors/20429).
# 21611: the sender's outbound queue is full (https://www.twilio.com/docs/api/errors/21611).
RETRYABLE_ERROR_CODES: frozenset[int] = frozenset({20429, 21611})

# Human-readable reasons for staff. Twilio's own messages are written for developers
# ("The 'To' number +1... is not a valid phone number"); the inbox needs a sentence about the constituent.
# Reference: https://www.twilio.com/docs/api/errors
TWILIO_ERROR_REASONS: Mapping[int, str] = MappingProxyType(
    {
        20003: "Twilio rejected the account credentials (check the office's Twilio settings).",
        20404: "Twilio has no record of this resource.",
        20429: "Twilio is rate limiting requests; the message will be retried.",
        21211: "The recipient's phone number is not valid.",
        21408: "Texting this country is not enabled for the account.",
        21602: "The message has no text and no attachment.",
        21603: "No sending number was given.",
        21604: "No recipient number was given.",
        21606: "The office's number cannot send texts to this recipient.",
        21608: "The account is a trial account and the recipient is not verified.",
        21610: "The recipient has opted out of texts from this number (replied STOP).",
        21611: "Too many messages are queued on the office's number; the message will be retried.",
        21612: "Twilio cannot route a text to this number.",
        21614: "The recipient's number is not a mobile number, so it cannot receive texts.",
        21617: "The message is longer than 1,600 characters.",
        21635: "The recipient's number is not a valid mobile number.",
        30001: "The office's sending queue overflowed.",
        30002: "The Twilio account is suspended.",
        30003: "The recipient's phone is unreachable (off or out of coverage).",
        30004: "The message was blocked (the recipient may have blocked the number).",
        30005: "The recipient's number is unknown to the carrier or no longer in service.",
        30006: "The recipient's number is a landline or cannot receive texts.",
        30007: "The carrier filtered the message as possible spam.",
        30008: "The carrier reported an unknown delivery error.",
        30032: "The office's toll-free number is not verified for texting.",
        30034: "The office's number is not registered for A2P 10DLC texting.",
    }
)


def reason_for_code(code: int | None, default: str) -> str:
    """Staff-readable reason for a Twilio error code, or ``default`` if the code is unknown or absent."""
    if code is None:
        return default
    return TWILIO_ERROR_REASONS.get(code, default)
