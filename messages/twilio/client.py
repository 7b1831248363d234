"""The Twilio REST API, reached through the official SDK. The only importer of ``twilio.rest``.

Every SDK or network failure leaves this module as one of the project's errors
(:mod:`messages.twilio.errors`), classified for the outbound state machine:

- :class:`RetryableSendError`: Twilio certainly did not create the message (429/20429, 5xx, connection
  refused or connect timeout, DNS failure) - try again later;
- :class:`PermanentSendError`: Twilio refused it for good (21610 opted out, 21211 bad number, any other
  4xx) - show ``reason`` to staff;
- :class:`UnknownOutcomeError`: the request may have reached Twilio but no answer came back (read
  timeout, connection dropped mid-response) - reconcile with :func:`list_recent_messages`, never resend.

Settings read (lazily, at call time):
- ``TWILIO_API_BASE_URL`` (absent or ``""``: Twilio's real API): when set (e.g. ``http://127.0.0.1:8765``)
  every request for ``https://api.twilio.com`` goes there instead. A test hook, to run the real SDK against
  a local fake: only the test settings define it, and production and local settings refuse to start when
  the environment sets it, so it is read with ``getattr`` and a default.
- ``TWILIO_HTTP_TIMEOUT`` (default ``(3.0, 10.0)``): ``(connect, read)`` seconds, or one number for both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from messages.twilio.errors import (
    RETRYABLE_ERROR_CODES,
    PermanentSendError,
    RetryableSendError,
    SendError,
    UnknownOutcomeError,
    reason_for_code,
)

logger = logging.getLogger(__name__)

TWILIO_API_ORIGIN = "https://api.twilio.com"
DEFAULT_HTTP_TIMEOUT: tuple[float, float] = (3.0, 10.0)

# The SDK falls back to os.environ when `environment` is falsy, and would then pick up TWILIO_REGION /
# TWILIO_EDGE from the process (changing the API host) or credentials we did not pass. A non-empty
# mapping with none of those keys pins the client to exactly what we give it.
_SDK_ENVIRONMENT = {"CIVICDESK_TWILIO_CLIENT": "1"}


@dataclass(frozen=True, slots=True)
class SendResult:
    """What Twilio said about one message. ``status`` is lower-case (``queued``, ``accepted``, ...)."""

    sid: str
    status: str
    error_code: int | None
    num_segments: int | None


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message found by :func:`list_recent_messages`, with what is needed to match it to ours."""

    sid: str
    status: str
    error_code: int | None
    num_segments: int | None
    body: str
    to: str
    from_number: str
    date_created: datetime | None
    date_sent: datetime | None

    def as_send_result(self) -> SendResult:
        return SendResult(self.sid, self.status, self.error_code, self.num_segments)


# --- configuration ---------------------------------------------------------------------------------


def api_base_url() -> str:
    """The configured replacement for ``https://api.twilio.com`` (no trailing slash), or ``""``."""
    return str(getattr(settings, "TWILIO_API_BASE_URL", "") or "").rstrip("/")


def http_timeout() -> tuple[float, float]:
    """``(connect, read)`` timeout in seconds from ``TWILIO_HTTP_TIMEOUT``."""
    value: Any = getattr(settings, "TWILIO_HTTP_TIMEOUT", None)
    if value is None:
        return DEFAULT_HTTP_TIMEOUT
    if isinstance(value, int | float):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


def rewrite_api_url(url: str, base_url: str) -> str:
    """``url`` with the ``https://api.twilio.com`` origin replaced by ``base_url`` (if ``base_url`` is set).

    Only that exact origin is rewritten: ``https://api.twilio.com.evil.com/`` is left alone.
    """
    if base_url and (url == TWILIO_API_ORIGIN or url.startswith(TWILIO_API_ORIGIN + "/")):
        return base_url.rstrip("/") + url[len(TWILIO_API_ORIGIN) :]
    return url


class RewritingHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type information
    """The SDK's own HTTP client, plus origin rewriting and a ``(connect, read)`` timeout.

    Pattern from the SDK docs on custom clients
    (https://github.com/twilio/twilio-python/blob/main/advanced-examples/custom-http-client.md).
    The SDK never retries: ``max_retries`` stays at requests' default of 0, so a POST is sent once.
    """

    def __init__(
        self, *, api_base_url: str = "", timeout: tuple[float, float] = DEFAULT_HTTP_TIMEOUT
    ) -> None:
        super().__init__(pool_connections=True)
        # HttpClient.__init__ checks `timeout <= 0`, which a (connect, read) tuple cannot take, so the
        # tuple is set afterwards; requests accepts it as-is.
        self.timeout = timeout
        self.api_base_url = api_base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            rewrite_api_url(url, self.api_base_url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


# One HTTP client (and so one requests.Session with its connection pool) per thread and configuration:
# sessions are not guaranteed thread-safe, and building one per call would throw away keep-alive.
_local = threading.local()


def _http_client(base_url: str, timeout: tuple[float, float]) -> RewritingHttpClient:
    cache: dict[tuple[str, tuple[float, float]], RewritingHttpClient]
    cache = _local.__dict__.setdefault("clients", {})
    key = (base_url, timeout)
    client = cache.get(key)
    if client is None:
        client = cache[key] = RewritingHttpClient(api_base_url=base_url, timeout=timeout)
    return client


def build_client(account_sid: str, auth_token: str) -> Client:
    """A ``twilio.rest.Client`` for one (sub)account, honouring the settings above."""
    return Client(
        account_sid,
        auth_token,
        http_client=_http_client(api_base_url(), http_timeout()),
        environment=dict(_SDK_ENVIRONMENT),
    )


# --- error mapping ---------------------------------------------------------------------------------


_FIRST_TWILIO_CODE = 10000  # Twilio's own error codes have five digits; smaller ones are HTTP statuses


def _twilio_code(exc: TwilioRestException | TwilioServiceException) -> int | None:
    # The SDK puts the HTTP status in `code` when the error body had no Twilio code; real Twilio codes
    # have five digits (https://www.twilio.com/docs/api/errors).
    try:
        code = int(exc.code) if exc.code is not None else None
    except (TypeError, ValueError):
        return None
    return code if code is not None and code >= _FIRST_TWILIO_CODE else None


def _error_from_rest(exc: TwilioRestException | TwilioServiceException, *, is_create: bool) -> SendError:
    status = int(exc.status)
    code = _twilio_code(exc)
    detail = (exc.detail or exc.title) if isinstance(exc, TwilioServiceException) else exc.msg
    if (
        status == HTTPStatus.TOO_MANY_REQUESTS
        or status >= HTTPStatus.INTERNAL_SERVER_ERROR
        or code in RETRYABLE_ERROR_CODES
    ):
        default = f"Twilio is temporarily unavailable (HTTP {status}); it will be retried."
        return RetryableSendError(reason_for_code(code, default), code=code, http_status=status)
    if HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR:
        suffix = f" (error {code})" if code else ""
        default = f"Twilio refused the request{suffix}: {detail}"
        return PermanentSendError(reason_for_code(code, default), code=code, http_status=status)
    # Any other status on a create is not a "no": we cannot tell whether the message exists.
    reason = f"Twilio answered with unexpected HTTP {status}."
    if is_create:
        return UnknownOutcomeError(reason, code=code, http_status=status)
    return RetryableSendError(reason, code=code, http_status=status)


def _never_reached_twilio(exc: requests.RequestException) -> bool:
    """True if the request certainly never left this host (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        # requests wraps urllib3's failure: connection refused / DNS failure / connect timeout arrive as
        # MaxRetryError(reason=NewConnectionError|ConnectTimeoutError) because urllib3 gives up before
        # sending; a connection dropped after sending arrives as a bare ProtocolError instead.
        cause = exc.args[0]
        return isinstance(cause, MaxRetryError) and isinstance(
            cause.reason, NewConnectionError | ConnectTimeoutError
        )
    return isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema)


def _error_from_network(exc: requests.RequestException, *, is_create: bool) -> SendError:
    if _never_reached_twilio(exc):
        return RetryableSendError(f"Could not connect to Twilio ({type(exc).__name__}); it will be retried.")
    if is_create:
        return UnknownOutcomeError(
            f"No answer from Twilio after sending ({type(exc).__name__}); "
            "checking whether the message went out before trying again."
        )
    return RetryableSendError(f"No answer from Twilio ({type(exc).__name__}); it will be retried.")


def _as_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _send_result(message: Any) -> SendResult:
    return SendResult(
        sid=str(message.sid),
        status=str(message.status or "").lower(),
        error_code=_as_int(message.error_code),
        num_segments=_as_int(message.num_segments),
    )


# --- operations ------------------------------------------------------------------------------------


def send_message(
    *,
    account_sid: str,
    auth_token: str,
    to: str,
    body: str,
    from_number: str | None = None,
    messaging_service_sid: str | None = None,
    status_callback: str | None = None,
    media_urls: Sequence[str] = (),
    validity_period: int | None = None,
) -> SendResult:
    """Create one outbound message (a single POST, never retried here).

    Raises :class:`RetryableSendError`, :class:`PermanentSendError` or :class:`UnknownOutcomeError`.
    ``validity_period`` is in seconds (1..36000, Twilio's queue limit of 10 hours).
    """
    if not from_number and not messaging_service_sid:
        raise ValueError("send_message needs from_number or messaging_service_sid")
    kwargs: dict[str, Any] = {"to": to}
    if body:
        kwargs["body"] = body
    if from_number:
        kwargs["from_"] = from_number
    if messaging_service_sid:
        kwargs["messaging_service_sid"] = messaging_service_sid
    if status_callback:
        kwargs["status_callback"] = status_callback
    if media_urls:
        kwargs["media_url"] = list(media_urls)
    if validity_period is not None:
        kwargs["validity_period"] = validity_period
    client = build_client(account_sid, auth_token)
    try:
        message = client.messages.create(**kwargs)
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _error_from_rest(exc, is_create=True) from exc
    except requests.RequestException as exc:
        raise _error_from_network(exc, is_create=True) from exc
    result = _send_result(message)
    logger.info("Twilio accepted message %s (status=%s)", result.sid, result.status)
    return result


def fetch_message(*, account_sid: str, auth_token: str, sid: str) -> SendResult:
    """Current state of message ``sid``. A GET: network failures are always retryable."""
    client = build_client(account_sid, auth_token)
    try:
        message = client.messages(sid).fetch()
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _error_from_rest(exc, is_create=False) from exc
    except requests.RequestException as exc:
        raise _error_from_network(exc, is_create=False) from exc
    return _send_result(message)


def list_recent_messages(
    *,
    account_sid: str,
    auth_token: str,
    to: str,
    from_number: str | None = None,
    date_sent_after: datetime,
    limit: int = 50,
) -> list[SentMessage]:
    """Messages to ``to`` (and from ``from_number``) created at or after ``date_sent_after``, newest first.

    For reconciling an :class:`UnknownOutcomeError`: match the result on ``body`` (and ``to``). Twilio's
    ``DateSent>`` filter is documented at day granularity (``YYYY-MM-DD``), so we ask for the whole UTC
    day and filter precisely here on ``date_created`` (falling back to ``date_sent``).

    Caveat: a message still waiting in Twilio's queue may have no ``date_sent`` yet and be left out by
    Twilio's filter. An empty answer means "not found yet", not "never sent": callers should retry the
    reconciliation until well past the message's validity period before concluding it was not created.
    """
    if date_sent_after.tzinfo is None:
        raise ValueError("date_sent_after must be timezone-aware")
    after = date_sent_after.astimezone(UTC)
    kwargs: dict[str, Any] = {"to": to, "date_sent_after": after.date().isoformat(), "limit": limit}
    if from_number:
        kwargs["from_"] = from_number
    client = build_client(account_sid, auth_token)
    try:
        messages = client.messages.list(**kwargs)
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _error_from_rest(exc, is_create=False) from exc
    except requests.RequestException as exc:
        raise _error_from_network(exc, is_create=False) from exc
    found = []
    for message in messages:
        created = message.date_created or message.date_sent
        if created is not None and created < after:
            continue
        base = _send_result(message)
        found.append(
            SentMessage(
                sid=base.sid,
                status=base.status,
                error_code=base.error_code,
                num_segments=base.num_segments,
                body=str(message.body or ""),
                to=str(message.to or ""),
                from_number=str(message.from_ or ""),
                date_created=message.date_created,
                date_sent=message.date_sent,
            )
        )
    return found


# --- voice recordings (appended for the voice hotline) ----------------------------------------------------


def delete_recording(*, account_sid: str, auth_token: str, recording_sid: str) -> bool:
    """Delete one call recording at Twilio (a DELETE; safe to repeat).

    Returns True if Twilio deleted it, False if Twilio has no such recording (HTTP 404, e.g. a repeat of a
    deletion that succeeded but whose answer was lost). Raises :class:`RetryableSendError` (429, 5xx,
    network) or :class:`PermanentSendError` (any other 4xx, e.g. bad credentials).
    https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource
    """
    client = build_client(account_sid, auth_token)
    try:
        return bool(client.recordings(recording_sid).delete())
    except (TwilioRestException, TwilioServiceException) as exc:
        if int(exc.status) == HTTPStatus.NOT_FOUND:
            return False
        raise _error_from_rest(exc, is_create=False) from exc
    except requests.RequestException as exc:
        raise _error_from_network(exc, is_create=False) from exc
