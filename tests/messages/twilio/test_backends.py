from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from messages.twilio import backends
from messages.twilio.backends import (
    LocmemBackend,
    OutboundSms,
    SimulatorBackend,
    TwilioBackend,
    get_backend,
)
from messages.twilio.errors import PermanentSendError, RetryableSendError, UnknownOutcomeError
from tests.fakes.fake_twilio import ROUTE_CREATE_MESSAGE, FakeTwilio

SID_RE = re.compile(r"(SM|MM)[0-9a-f]{32}")
ACCOUNT = "AC" + "c" * 32
TOKEN = "backend-test-token"


def outbound(**overrides) -> OutboundSms:
    fields: dict[str, Any] = {
        "to": "+15550100123",
        "body": "Thanks, we logged it.",
        "from_number": "+15550100001",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "client_reference": "42",
    }
    fields.update(overrides)
    return OutboundSms(**fields)


def test_outbound_sms_repr_hides_the_auth_token():
    assert TOKEN not in repr(outbound())


# --- selection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "cls"),
    [
        ("locmem", LocmemBackend),
        ("simulator", SimulatorBackend),
        ("twilio", TwilioBackend),
        ("messages.twilio.backends.LocmemBackend", LocmemBackend),
    ],
)
def test_get_backend_accepts_aliases_and_dotted_paths(settings, setting, cls):
    settings.SMS_BACKEND = setting
    assert isinstance(get_backend(), cls)


def test_get_backend_caches_one_instance_per_setting_value(settings):
    settings.SMS_BACKEND = "locmem"
    first = get_backend()
    assert get_backend() is first
    settings.SMS_BACKEND = "simulator"
    assert get_backend() is not first


def test_unknown_backend_fails_loudly(settings):
    settings.SMS_BACKEND = "messages.twilio.backends.NoSuchBackend"
    with pytest.raises(ImportError):
        get_backend()


# --- locmem ----------------------------------------------------------------------------------------


@pytest.fixture
def locmem() -> Iterator[LocmemBackend]:
    backends.reset_locmem()
    yield LocmemBackend()
    backends.reset_locmem()


def test_locmem_records_sends_and_returns_queued_with_twilio_shaped_sids(locmem):
    first = locmem.send(outbound())
    second = locmem.send(outbound(body="Second"))
    assert backends.outbox == [outbound(), outbound(body="Second")]
    assert SID_RE.fullmatch(first.sid)
    assert first.sid != second.sid
    assert (first.status, first.error_code, first.num_segments) == ("queued", None, 1)


def test_locmem_fail_next_raises_once_then_sends_normally(locmem):
    backends.fail_next(RetryableSendError("Twilio is down", http_status=503))
    with pytest.raises(RetryableSendError):
        locmem.send(outbound())
    assert backends.outbox == []
    assert locmem.send(outbound()).status == "queued"


def test_locmem_unknown_outcome_can_leave_a_created_message_for_reconciliation(locmem):
    started = datetime.now(UTC) - timedelta(seconds=1)
    LocmemBackend.fail_next(UnknownOutcomeError("read timeout"), created=True)
    with pytest.raises(UnknownOutcomeError):
        locmem.send(outbound(body="Did it go?"))
    found = locmem.find_sent(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        to="+15550100123",
        from_number="+15550100001",
        date_sent_after=started,
    )
    assert [m.body for m in found] == ["Did it go?"]


def test_locmem_fetch_reflects_set_status(locmem):
    sid = locmem.send(outbound()).sid
    LocmemBackend.set_status(sid, "delivered")
    assert locmem.fetch(account_sid=ACCOUNT, auth_token=TOKEN, sid=sid).status == "delivered"
    with pytest.raises(PermanentSendError):
        locmem.fetch(account_sid="AC" + "d" * 32, auth_token=TOKEN, sid=sid)


def test_locmem_requires_a_sender(locmem):
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        locmem.send(outbound(from_number=None))


def test_locmem_media_messages_get_mm_sids(locmem):
    assert locmem.send(outbound(media_urls=("https://x.test/a.jpg",))).sid.startswith("MM")


# --- twilio (against the fake API) -----------------------------------------------------------------


def test_twilio_backend_sends_fetches_and_finds_through_the_sdk(settings):
    with FakeTwilio(accounts={ACCOUNT: TOKEN}) as fake:
        settings.TWILIO_API_BASE_URL = fake.base_url
        backend = TwilioBackend()
        started = datetime.now(UTC) - timedelta(seconds=1)
        result = backend.send(outbound(status_callback="https://civic.example.org/s/"))
        assert result.status == "queued"
        (request,) = fake.requests_for(ROUTE_CREATE_MESSAGE)
        assert request.form["StatusCallback"] == ["https://civic.example.org/s/"]
        assert backend.fetch(account_sid=ACCOUNT, auth_token=TOKEN, sid=result.sid).sid == result.sid
        found = backend.find_sent(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            to="+15550100123",
            from_number="+15550100001",
            date_sent_after=started,
        )
        assert [m.sid for m in found] == [result.sid]


# --- simulator -------------------------------------------------------------------------------------


class CallbackReceiver:
    """A tiny HTTP server standing in for the app's status-callback webhook; verifies signatures."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.received: list[dict[str, str]] = []
        self.valid: list[bool] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                params = dict(parse_qsl(body, keep_blank_values=True))
                url = f"{receiver.url}{self.path}"
                signature = self.headers.get("X-Twilio-Signature", "")
                receiver.valid.append(RequestValidator(receiver.token).validate(url, params, signature))
                receiver.received.append(params)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(p["MessageStatus"], p.get("ErrorCode")) for p in self.received]


@pytest.fixture
def receiver(settings) -> Iterator[CallbackReceiver]:
    settings.SMS_SIMULATOR_DELAYS = (0.01, 0.02)
    with CallbackReceiver(TOKEN) as receiver:
        yield receiver


def test_simulator_posts_signed_sent_then_delivered_callbacks(receiver):
    backend = SimulatorBackend()
    msg = outbound(status_callback=f"{receiver.url}/webhooks/twilio/sms/status/?office=alpha")
    result = backend.send(msg)
    assert result.status == "queued"
    assert SID_RE.fullmatch(result.sid)
    assert SimulatorBackend.wait_until_idle(5)
    assert receiver.statuses() == [("sent", None), ("delivered", None)]
    assert receiver.valid == [True, True]
    first = receiver.received[0]
    assert (first["MessageSid"], first["AccountSid"], first["To"], first["From"]) == (
        result.sid,
        ACCOUNT,
        msg.to,
        msg.from_number,
    )
    assert backend.fetch(account_sid=ACCOUNT, auth_token=TOKEN, sid=result.sid).status == "delivered"


def test_simulator_numbers_ending_0000_end_undelivered_with_30006(receiver):
    backend = SimulatorBackend()
    backend.send(outbound(to="+15550100000", status_callback=f"{receiver.url}/s/"))
    assert SimulatorBackend.wait_until_idle(5)
    assert receiver.statuses() == [("sent", None), ("undelivered", "30006")]
    assert all(receiver.valid)


def test_simulator_numbers_ending_9999_fail_synchronously_as_opted_out(receiver):
    with pytest.raises(PermanentSendError) as info:
        SimulatorBackend().send(outbound(to="+15550109999", status_callback=f"{receiver.url}/s/"))
    assert info.value.code == 21610
    time.sleep(0.1)
    assert receiver.received == []


def test_simulator_without_status_callback_still_advances_the_status(settings):
    settings.SMS_SIMULATOR_DELAYS = (0, 0)
    backend = SimulatorBackend()
    sid = backend.send(outbound()).sid
    assert SimulatorBackend.wait_until_idle(5)
    assert backend.fetch(account_sid=ACCOUNT, auth_token=TOKEN, sid=sid).status == "delivered"


def test_simulator_survives_an_unreachable_callback_url(settings, caplog):
    settings.SMS_SIMULATOR_DELAYS = (0, 0)
    backend = SimulatorBackend()
    sid = backend.send(outbound(status_callback="http://127.0.0.1:9/unreachable")).sid
    assert SimulatorBackend.wait_until_idle(10)
    assert backend.fetch(account_sid=ACCOUNT, auth_token=TOKEN, sid=sid).status == "delivered"
    assert "could not post" in caplog.text
