"""The real Twilio SDK against the local fake API, over HTTP (no SDK mocks)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from messages.twilio import client
from messages.twilio.client import (
    SendResult,
    fetch_message,
    http_timeout,
    list_recent_messages,
    rewrite_api_url,
    send_message,
)
from messages.twilio.errors import PermanentSendError, RetryableSendError, UnknownOutcomeError
from tests.fakes.fake_twilio import (
    ROUTE_CREATE_MESSAGE,
    ROUTE_FETCH_MESSAGE,
    ROUTE_LIST_MESSAGES,
    FakeTwilio,
    Scripted,
)

TO = "+15550100123"
FROM = "+15550100001"
READ_TIMEOUT = 0.5
SID_RE = re.compile(r"SM[0-9a-f]{32}")


@pytest.fixture
def fake(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_API_BASE_URL = fake.base_url
        settings.TWILIO_HTTP_TIMEOUT = (2.0, READ_TIMEOUT)
        yield fake


def send(fake: FakeTwilio, **overrides) -> SendResult:
    kwargs: dict[str, Any] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "to": TO,
        "body": "Your pothole report is logged.",
        "from_number": FROM,
    }
    kwargs.update(overrides)
    return send_message(**kwargs)


# --- success ---------------------------------------------------------------------------------------


def test_send_message_posts_the_form_with_basic_auth_and_returns_queued(fake):
    result = send(
        fake, status_callback="https://civic.example.org/webhooks/twilio/sms/status/", validity_period=3600
    )
    assert SID_RE.fullmatch(result.sid)
    assert (result.status, result.error_code, result.num_segments) == ("queued", None, 1)

    (request,) = fake.requests_for(ROUTE_CREATE_MESSAGE)
    assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert request.auth == (fake.account_sid, fake.auth_token)
    assert request.form["To"] == [TO]
    assert request.form["From"] == [FROM]
    assert request.form["Body"] == ["Your pothole report is logged."]
    assert request.form["StatusCallback"] == ["https://civic.example.org/webhooks/twilio/sms/status/"]
    assert request.form["ValidityPeriod"] == ["3600"]
    assert result.sid in fake.messages


def test_send_through_a_messaging_service_is_accepted(fake):
    service = "MG" + "6" * 32
    result = send(fake, from_number=None, messaging_service_sid=service)
    assert result.status == "accepted"
    (request,) = fake.requests_for(ROUTE_CREATE_MESSAGE)
    assert request.form["MessagingServiceSid"] == [service]
    assert "From" not in request.form


def test_media_urls_are_sent_as_repeated_parameters(fake):
    send(fake, media_urls=("https://civic.example.org/m/1.jpg", "https://civic.example.org/m/2.jpg"))
    (request,) = fake.requests_for(ROUTE_CREATE_MESSAGE)
    assert request.form["MediaUrl"] == [
        "https://civic.example.org/m/1.jpg",
        "https://civic.example.org/m/2.jpg",
    ]


def test_long_body_reports_segments_as_an_int(fake):
    assert send(fake, body="x" * 200).num_segments == 2


def test_send_needs_a_sender():
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        send_message(account_sid="AC" + "0" * 32, auth_token="t", to=TO, body="hi")


def test_process_environment_cannot_redirect_the_client(fake, monkeypatch):
    # An empty `environment` would make the SDK read os.environ and rewrite the host to a regional edge.
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "f" * 32)
    assert send(fake).status == "queued"
    (request,) = fake.requests_for(ROUTE_CREATE_MESSAGE)
    assert request.auth == (fake.account_sid, fake.auth_token)


# --- Twilio errors ---------------------------------------------------------------------------------


def test_opted_out_recipient_is_a_permanent_error_with_a_staff_reason(fake):
    fake.script(Scripted.twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    with pytest.raises(PermanentSendError) as info:
        send(fake)
    assert (info.value.code, info.value.http_status) == (21610, 400)
    assert "opted out" in info.value.reason
    assert fake.messages == {}


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (21211, "not valid"),
        (21612, "cannot route"),
        (21614, "not a mobile number"),
        (21617, "1,600"),
        (21635, "not a valid mobile number"),
    ],
)
def test_known_permanent_codes_map_to_readable_reasons(fake, code, words):
    fake.script(Scripted.twilio_error(400, code, "Twilio's developer message"))
    with pytest.raises(PermanentSendError) as info:
        send(fake)
    assert info.value.code == code
    assert words in info.value.reason


def test_unknown_4xx_is_permanent_and_keeps_twilios_message(fake):
    fake.script(Scripted.twilio_error(400, 21999, "Something unusual happened"))
    with pytest.raises(PermanentSendError) as info:
        send(fake)
    assert info.value.code == 21999
    assert "Something unusual happened" in info.value.reason


def test_wrong_credentials_are_permanent(fake):
    with pytest.raises(PermanentSendError) as info:
        send(fake, auth_token="wrong")
    assert (info.value.code, info.value.http_status) == (20003, 401)


def test_problem_details_errors_are_mapped_too(fake):
    fake.script(
        Scripted(
            status=400,
            json_body={
                "type": "https://www.twilio.com/docs/errors/21610",
                "title": "Unsubscribed recipient",
                "status": 400,
                "code": 21610,
                "detail": "The recipient replied STOP",
            },
        )
    )
    with pytest.raises(PermanentSendError) as info:
        send(fake)
    assert info.value.code == 21610


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted.twilio_error(429, 20429, "Too Many Requests"),
        Scripted(status=429, json_body={"message": "Too Many Requests", "status": 429}),
        Scripted.server_error(500),
        Scripted.server_error(503),
        Scripted.twilio_error(
            400, 21611, "This 'From' number has exceeded the maximum number of queued messages"
        ),
    ],
    ids=["429-20429", "429-no-code", "500", "503", "21611-queue-full"],
)
def test_throttling_and_server_errors_are_retryable(fake, scripted):
    fake.script(scripted)
    with pytest.raises(RetryableSendError) as info:
        send(fake)
    assert info.value.http_status == scripted.status
    assert fake.messages == {}


def test_a_5xx_without_a_twilio_code_has_no_code(fake):
    fake.script(Scripted.server_error(502))
    with pytest.raises(RetryableSendError) as info:
        send(fake)
    assert info.value.code is None


# --- network failures ------------------------------------------------------------------------------


def test_read_timeout_after_sending_is_an_unknown_outcome_that_reconciliation_resolves(fake):
    started = datetime.now(UTC)
    fake.script(Scripted.slow(READ_TIMEOUT + 1.0), route=ROUTE_CREATE_MESSAGE)
    with pytest.raises(UnknownOutcomeError):
        send(fake, body="Reply that timed out")
    # Twilio did create it: reconciliation finds it by body instead of resending.
    (created,) = fake.messages.values()
    found = list_recent_messages(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        to=TO,
        from_number=FROM,
        date_sent_after=started - timedelta(seconds=5),
    )
    assert [(m.sid, m.body) for m in found] == [(created["sid"], "Reply that timed out")]
    assert len(fake.requests_for(ROUTE_CREATE_MESSAGE)) == 1  # never resent


def test_connection_dropped_after_sending_is_an_unknown_outcome(fake):
    fake.script(Scripted.drop(), route=ROUTE_CREATE_MESSAGE)
    with pytest.raises(UnknownOutcomeError):
        send(fake)
    assert len(fake.messages) == 1


def test_connection_refused_is_retryable(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"  # nothing listens here any more
    with pytest.raises(RetryableSendError, match="Could not connect"):
        send_message(account_sid="AC" + "0" * 32, auth_token="t", to=TO, body="hi", from_number=FROM)


def test_connect_timeout_is_retryable_because_nothing_was_sent():
    error = client._error_from_network(requests.ConnectTimeout("connect timed out"), is_create=True)
    assert isinstance(error, RetryableSendError)


def test_read_timeout_on_a_fetch_is_retryable(fake):
    sid = fake.add_message(to=TO, body="hello", status="sent")
    fake.script(Scripted.slow(READ_TIMEOUT + 1.0), route=ROUTE_FETCH_MESSAGE)
    with pytest.raises(RetryableSendError):
        fetch_message(account_sid=fake.account_sid, auth_token=fake.auth_token, sid=sid)


# --- fetch and list --------------------------------------------------------------------------------


def test_fetch_message_returns_the_current_status(fake):
    sid = send(fake).sid
    fake.set_message_status(sid, "undelivered", 30006)
    result = fetch_message(account_sid=fake.account_sid, auth_token=fake.auth_token, sid=sid)
    assert result == SendResult(sid=sid, status="undelivered", error_code=30006, num_segments=1)


def test_fetch_unknown_message_is_permanent_20404(fake):
    with pytest.raises(PermanentSendError) as info:
        fetch_message(account_sid=fake.account_sid, auth_token=fake.auth_token, sid="SM" + "9" * 32)
    assert (info.value.code, info.value.http_status) == (20404, 404)


def test_list_recent_messages_filters_by_recipient_sender_and_date(fake):
    now = datetime.now(UTC)
    old = fake.add_message(to=TO, body="old", date_created=now - timedelta(days=3))
    earlier_today = fake.add_message(to=TO, body="earlier", date_created=now - timedelta(minutes=30))
    recent = fake.add_message(to=TO, body="recent", date_created=now - timedelta(seconds=30))
    other_to = fake.add_message(to="+15550100999", body="recent", date_created=now)
    other_from = fake.add_message(to=TO, from_="+15550100002", body="recent", date_created=now)

    found = list_recent_messages(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        to=TO,
        from_number=FROM,
        date_sent_after=now - timedelta(minutes=5),
    )
    assert [m.sid for m in found] == [recent]
    assert found[0].as_send_result().status == "delivered"
    assert {old, earlier_today, other_to, other_from}.isdisjoint(m.sid for m in found)

    (request,) = fake.requests_for(ROUTE_LIST_MESSAGES)
    assert request.query["To"] == [TO]
    assert request.query["From"] == [FROM]
    assert request.query["DateSent>"] == [(now - timedelta(minutes=5)).date().isoformat()]


def test_list_recent_messages_needs_an_aware_datetime(fake):
    with pytest.raises(ValueError, match="timezone-aware"):
        list_recent_messages(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            to=TO,
            date_sent_after=datetime.now(),  # noqa: DTZ005  naive on purpose
        )


# --- configuration ---------------------------------------------------------------------------------


def test_rewrite_only_touches_the_exact_twilio_api_origin():
    base = "http://127.0.0.1:9999"
    assert rewrite_api_url("https://api.twilio.com/2010-04-01/x.json", base) == base + "/2010-04-01/x.json"
    assert rewrite_api_url("https://api.twilio.com", base) == base
    assert rewrite_api_url("https://api.twilio.com.evil.com/x", base) == "https://api.twilio.com.evil.com/x"
    assert rewrite_api_url("https://messaging.twilio.com/v1/x", base) == "https://messaging.twilio.com/v1/x"
    assert rewrite_api_url("https://api.twilio.com/x", "") == "https://api.twilio.com/x"


def test_http_timeout_setting_accepts_a_pair_or_one_number(settings):
    settings.TWILIO_HTTP_TIMEOUT = None
    assert http_timeout() == (3.0, 10.0)
    settings.TWILIO_HTTP_TIMEOUT = 5
    assert http_timeout() == (5.0, 5.0)
    settings.TWILIO_HTTP_TIMEOUT = (1, 2.5)
    assert http_timeout() == (1.0, 2.5)
