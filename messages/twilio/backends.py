"""Pluggable SMS backends, chosen by ``settings.SMS_BACKEND`` the way Django chooses ``EMAIL_BACKEND``.

``SMS_BACKEND`` (default ``"twilio"``) is an alias or a dotted path to a class taking no arguments:

- ``"twilio"`` -> :class:`TwilioBackend`: the real REST API through :mod:`messages.twilio.client`;
- ``"simulator"`` -> :class:`SimulatorBackend`: offline demo; assigns SIDs and posts *signed* status
  callbacks back to the app over HTTP, so the real webhook path runs;
- ``"locmem"`` -> :class:`LocmemBackend`: records sends in :data:`outbox` for tests.

The default is ``"twilio"`` so that a production deployment that forgets the setting fails loudly
(no credentials) instead of silently pretending to send.

Other settings read: ``SMS_SIMULATOR_DELAYS`` (default ``(0.2, 0.5)``): seconds from the send to the
``sent`` callback, then from ``sent`` to the final (``delivered``/``undelivered``) callback.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Protocol

import requests
from django.conf import settings

from common.backends import backend_load
from messages.segments import segment_info
from messages.twilio import client
from messages.twilio.client import SendResult, SentMessage
from messages.twilio.errors import PermanentSendError, SendError, reason_for_code
from messages.twilio.signatures import SIGNATURE_HEADER, sign

logger = logging.getLogger(__name__)

BACKEND_ALIASES: dict[str, str] = {
    "twilio": "messages.twilio.backends.TwilioBackend",
    "simulator": "messages.twilio.backends.SimulatorBackend",
    "locmem": "messages.twilio.backends.LocmemBackend",
}
DEFAULT_SIMULATOR_DELAYS: tuple[float, float] = (0.2, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundSms:
    """One message to send. ``status_callback`` is an absolute URL; ``client_reference`` is our Message id."""

    to: str
    body: str
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    media_urls: tuple[str, ...] = ()
    client_reference: str = ""
    validity_period: int | None = None


class SmsBackend(Protocol):
    def send(self, msg: OutboundSms) -> SendResult:
        """Create the message; raises the errors of :mod:`messages.twilio.errors`."""
        ...

    def fetch(self, *, account_sid: str, auth_token: str, sid: str) -> SendResult:
        """Current state of one message."""
        ...

    def find_sent(
        self,
        *,
        account_sid: str,
        auth_token: str,
        to: str,
        from_number: str | None,
        date_sent_after: datetime,
    ) -> list[SentMessage]:
        """Messages to ``to`` created since ``date_sent_after`` (for reconciling unknown outcomes)."""
        ...


def get_backend() -> SmsBackend:
    """The backend named by ``settings.SMS_BACKEND``; one instance per distinct setting value."""
    name = str(getattr(settings, "SMS_BACKEND", "twilio") or "twilio")
    backend: SmsBackend = backend_load(name, aliases=BACKEND_ALIASES)
    return backend


def _require_sender(msg: OutboundSms) -> None:
    if not msg.from_number and not msg.messaging_service_sid:
        raise ValueError("OutboundSms needs from_number or messaging_service_sid")


def new_message_sid(*, has_media: bool = False) -> str:
    """A random SID shaped like Twilio's (``SM``/``MM`` + 32 hex digits)."""
    return ("MM" if has_media else "SM") + secrets.token_hex(16)


# --- twilio ----------------------------------------------------------------------------------------


class TwilioBackend:
    """Sends through the real Twilio REST API (or ``TWILIO_API_BASE_URL`` when set)."""

    def send(self, msg: OutboundSms) -> SendResult:
        return client.send_message(
            account_sid=msg.account_sid,
            auth_token=msg.auth_token,
            to=msg.to,
            body=msg.body,
            from_number=msg.from_number,
            messaging_service_sid=msg.messaging_service_sid,
            status_callback=msg.status_callback,
            media_urls=msg.media_urls,
            validity_period=msg.validity_period,
        )

    def fetch(self, *, account_sid: str, auth_token: str, sid: str) -> SendResult:
        return client.fetch_message(account_sid=account_sid, auth_token=auth_token, sid=sid)

    def find_sent(
        self,
        *,
        account_sid: str,
        auth_token: str,
        to: str,
        from_number: str | None,
        date_sent_after: datetime,
    ) -> list[SentMessage]:
        return client.list_recent_messages(
            account_sid=account_sid,
            auth_token=auth_token,
            to=to,
            from_number=from_number,
            date_sent_after=date_sent_after,
        )


# --- shared in-memory message store (locmem and simulator) ----------------------------------------


@dataclass
class _Stored:
    msg: OutboundSms
    sid: str
    status: str
    error_code: int | None
    num_segments: int
    created_at: datetime

    def result(self) -> SendResult:
        return SendResult(self.sid, self.status, self.error_code, self.num_segments)

    def sent_message(self) -> SentMessage:
        return SentMessage(
            sid=self.sid,
            status=self.status,
            error_code=self.error_code,
            num_segments=self.num_segments,
            body=self.msg.body,
            to=self.msg.to,
            from_number=self.msg.from_number or "",
            date_created=self.created_at,
            date_sent=self.created_at,
        )


class _MessageStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, _Stored] = {}

    def add(self, msg: OutboundSms) -> _Stored:
        stored = _Stored(
            msg=msg,
            sid=new_message_sid(has_media=bool(msg.media_urls)),
            status="queued",
            error_code=None,
            num_segments=max(1, segment_info(msg.body).segments),
            created_at=datetime.now(UTC),
        )
        with self._lock:
            self._by_sid[stored.sid] = stored
        return stored

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        with self._lock:
            stored = self._by_sid[sid]
            stored.status = status
            stored.error_code = error_code

    def fetch(self, *, account_sid: str, sid: str) -> SendResult:
        with self._lock:
            stored = self._by_sid.get(sid)
            if stored is None or stored.msg.account_sid != account_sid:
                raise PermanentSendError(
                    reason_for_code(20404, "Unknown message."), code=20404, http_status=404
                )
            return stored.result()

    def find(
        self, *, account_sid: str, to: str, from_number: str | None, date_sent_after: datetime
    ) -> list[SentMessage]:
        with self._lock:
            matches = [
                stored.sent_message()
                for stored in self._by_sid.values()
                if stored.msg.account_sid == account_sid
                and stored.msg.to == to
                and (from_number is None or stored.msg.from_number == from_number)
                and stored.created_at >= date_sent_after
            ]
        return sorted(matches, key=lambda m: m.date_created or date_sent_after, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._by_sid.clear()


# --- locmem ----------------------------------------------------------------------------------------

#: Every message "sent" through :class:`LocmemBackend`, oldest first (like ``django.core.mail.outbox``).
outbox: list[OutboundSms] = []
_locmem_store = _MessageStore()
_locmem_lock = threading.Lock()
_locmem_failures: list[tuple[SendError, bool]] = []


class LocmemBackend:
    """Test backend: appends to :data:`outbox`, returns ``queued`` with a fresh ``SM...`` SID.

    ``LocmemBackend.fail_next(error)`` makes the next send raise ``error``; with ``created=True`` the
    message is recorded first (Twilio created it but we never heard back), which is how to test the
    reconciliation of an :class:`~messages.twilio.errors.UnknownOutcomeError`.
    """

    def send(self, msg: OutboundSms) -> SendResult:
        _require_sender(msg)
        with _locmem_lock:
            failure = _locmem_failures.pop(0) if _locmem_failures else None
        if failure is not None:
            error, created = failure
            if created:
                outbox.append(msg)
                _locmem_store.add(msg)
            raise error
        outbox.append(msg)
        return _locmem_store.add(msg).result()

    def fetch(self, *, account_sid: str, auth_token: str, sid: str) -> SendResult:
        return _locmem_store.fetch(account_sid=account_sid, sid=sid)

    def find_sent(
        self,
        *,
        account_sid: str,
        auth_token: str,
        to: str,
        from_number: str | None,
        date_sent_after: datetime,
    ) -> list[SentMessage]:
        return _locmem_store.find(
            account_sid=account_sid, to=to, from_number=from_number, date_sent_after=date_sent_after
        )

    @staticmethod
    def fail_next(error: SendError, *, created: bool = False) -> None:
        """Queue ``error`` for the next send (call repeatedly to fail several sends in order)."""
        with _locmem_lock:
            _locmem_failures.append((error, created))

    @staticmethod
    def set_status(sid: str, status: str, error_code: int | None = None) -> None:
        """Change what ``fetch``/``find_sent`` report for ``sid`` (e.g. to ``delivered``)."""
        _locmem_store.set_status(sid, status, error_code)

    @staticmethod
    def reset() -> None:
        """Empty the outbox, the store and any queued failures."""
        with _locmem_lock:
            _locmem_failures.clear()
        outbox.clear()
        _locmem_store.clear()


fail_next = LocmemBackend.fail_next
reset_locmem = LocmemBackend.reset


# --- simulator -------------------------------------------------------------------------------------


class _CallbackScheduler:
    """One daemon thread running due callbacks in time order (a thread per message would not scale
    to a bulk send of thousands)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._running = 0
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._counter), job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sms-simulator", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait_until_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                due, _, job = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._running += 1
            try:
                job()
            except Exception:
                logger.exception("SMS simulator callback failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()


_simulator_store = _MessageStore()
_scheduler = _CallbackScheduler()

SIMULATED_UNDELIVERED_SUFFIX = "0000"
SIMULATED_OPTED_OUT_SUFFIX = "9999"


def simulator_delays() -> tuple[float, float]:
    value: Any = getattr(settings, "SMS_SIMULATOR_DELAYS", None)
    if value is None:
        return DEFAULT_SIMULATOR_DELAYS
    to_sent, to_final = value
    return (float(to_sent), float(to_final))


class SimulatorBackend:
    """Offline stand-in for Twilio that exercises the app's real, signed status-callback webhook.

    ``send`` returns ``queued`` at once, then a background thread POSTs form-encoded status callbacks to
    ``msg.status_callback``, signed with ``msg.auth_token`` exactly as Twilio signs them:
    ``sent`` after ``SMS_SIMULATOR_DELAYS[0]`` seconds, then the final status after a further
    ``SMS_SIMULATOR_DELAYS[1]`` seconds.

    Outcomes are chosen by the destination number, so demos and tests can reach every branch
    (use the fictional range, e.g. ``+1555010xxxx``):

    - ends in ``9999``: the send fails synchronously with :class:`PermanentSendError` code 21610
      (recipient opted out), as Twilio does for a number that replied STOP;
    - ends in ``0000``: ``sent`` then ``undelivered`` with ``ErrorCode`` 30006 (landline/unreachable);
    - anything else: ``sent`` then ``delivered``.

    Callback failures (app down, non-2xx) are logged and not retried, like Twilio's.
    """

    def send(self, msg: OutboundSms) -> SendResult:
        _require_sender(msg)
        if msg.to.endswith(SIMULATED_OPTED_OUT_SUFFIX):
            raise PermanentSendError(reason_for_code(21610, "Opted out."), code=21610, http_status=400)
        stored = _simulator_store.add(msg)
        final_status, final_error = (
            ("undelivered", 30006) if msg.to.endswith(SIMULATED_UNDELIVERED_SUFFIX) else ("delivered", None)
        )
        to_sent, to_final = simulator_delays()
        _scheduler.schedule(to_sent, functools.partial(_advance, stored, "sent", None))
        _scheduler.schedule(
            to_sent + to_final, functools.partial(_advance, stored, final_status, final_error)
        )
        return stored.result()

    def fetch(self, *, account_sid: str, auth_token: str, sid: str) -> SendResult:
        return _simulator_store.fetch(account_sid=account_sid, sid=sid)

    def find_sent(
        self,
        *,
        account_sid: str,
        auth_token: str,
        to: str,
        from_number: str | None,
        date_sent_after: datetime,
    ) -> list[SentMessage]:
        return _simulator_store.find(
            account_sid=account_sid, to=to, from_number=from_number, date_sent_after=date_sent_after
        )

    @staticmethod
    def wait_until_idle(timeout: float = 5.0) -> bool:
        """Block until every scheduled callback has been posted; False on timeout (tests, demos)."""
        return _scheduler.wait_until_idle(timeout)


def status_callback_params(
    stored_msg: OutboundSms, sid: str, status: str, error_code: int | None
) -> list[tuple[str, str]]:
    """The form fields Twilio posts to a message status callback
    (https://www.twilio.com/docs/messaging/guides/track-outbound-message-status)."""
    params = [
        ("AccountSid", stored_msg.account_sid),
        ("ApiVersion", "2010-04-01"),
        ("From", stored_msg.from_number or ""),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("To", stored_msg.to),
    ]
    if stored_msg.messaging_service_sid:
        params.append(("MessagingServiceSid", stored_msg.messaging_service_sid))
    if error_code is not None:
        params.append(("ErrorCode", str(error_code)))
    return params


def _advance(stored: _Stored, status: str, error_code: int | None) -> None:
    _simulator_store.set_status(stored.sid, status, error_code)
    url = stored.msg.status_callback
    if not url:
        return
    params = status_callback_params(stored.msg, stored.sid, status, error_code)
    headers = {SIGNATURE_HEADER: sign(url, params, stored.msg.auth_token)}
    try:
        response = requests.post(url, data=params, headers=headers, timeout=client.DEFAULT_HTTP_TIMEOUT)
    except requests.RequestException as exc:
        logger.warning("SMS simulator could not post %s callback for %s: %s", status, stored.sid, exc)
        return
    if response.status_code >= HTTPStatus.MULTIPLE_CHOICES:
        logger.warning(
            "SMS simulator %s callback for %s got HTTP %s", status, stored.sid, response.status_code
        )
