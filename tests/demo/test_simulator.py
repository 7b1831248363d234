"""The phone simulator: signed inbound texts over real HTTP, the command, and the staff page."""

from __future__ import annotations

import re
import socket
from io import StringIO
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import QueryDict
from django.test import Client

from constituents.models import Constituent
from demo.seed import AREA_CODES as DEMO_AREA_CODES
from demo.sms import (
    SimulatorError,
    fictional_number,
    inbound_sms_params,
    parse_e164,
    simulate_inbound_sms,
)
from messages.models import Channel, Direction, Message
from messages.twilio.payloads import parse_inbound_sms
from offices.models import NumberType, Role
from tests import factories

OFFICE_NUMBER = "+14155550100"
CONSTITUENT = "+14155550123"
SM_SID = "SM" + "a" * 32
# Twilio's incoming-message webhook fields (https://www.twilio.com/docs/messaging/guides/webhook-request).
TWILIO_FIELDS = {
    "ToCountry",
    "ToState",
    "SmsMessageSid",
    "NumMedia",
    "ToCity",
    "FromZip",
    "SmsSid",
    "FromState",
    "SmsStatus",
    "FromCity",
    "Body",
    "FromCountry",
    "To",
    "ToZip",
    "NumSegments",
    "MessageSid",
    "AccountSid",
    "From",
    "ApiVersion",
}


@pytest.fixture
def live_office(transactional_db: None) -> Any:
    office = factories.OfficeFactory.create(slug="alpha", name="Alpha Office")
    factories.PhoneNumberFactory.create(office=office, e164=OFFICE_NUMBER)
    return office


@pytest.fixture
def live_base_url(live_server: Any, settings: Any) -> str:
    """The live server's URL, which the webhook also validates signatures against."""
    settings.PUBLIC_BASE_URL = live_server.url
    return str(live_server.url)


def send(base_url: str, settings: Any, **overrides: Any) -> Any:
    kwargs = {
        "base_url": base_url,
        "to": OFFICE_NUMBER,
        "from_": CONSTITUENT,
        "body": "Please fix the potholes on Valencia St.",
        "auth_token": settings.TWILIO_AUTH_TOKEN,
        "account_sid": settings.TWILIO_ACCOUNT_SID,
    }
    return simulate_inbound_sms(**{**kwargs, **overrides})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the form parameters ----------------------------------------------------------------------------------


def test_params_are_twilios_inbound_sms_fields_and_parse_back() -> None:
    params = inbound_sms_params(
        to=OFFICE_NUMBER, from_=CONSTITUENT, body="Hello", account_sid="AC" + "0" * 32, message_sid=SM_SID
    )
    post = QueryDict(mutable=True)
    for key, value in params:
        post.appendlist(key, value)

    sms = parse_inbound_sms(post)

    assert {key for key, _ in params} == TWILIO_FIELDS
    assert dict(params)["SmsStatus"] == "received"
    assert dict(params)["ApiVersion"] == "2010-04-01"
    assert dict(params)["FromCity"] == "SAN FRANCISCO"
    assert (sms.message_sid, sms.to_e164, sms.from_e164, sms.body) == (
        SM_SID,
        OFFICE_NUMBER,
        CONSTITUENT,
        "Hello",
    )
    assert sms.media == ()


def test_media_urls_become_numbered_media_fields() -> None:
    urls = [
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME1",
        "https://example.com/2.png",
    ]
    params = inbound_sms_params(
        to=OFFICE_NUMBER,
        from_=CONSTITUENT,
        body="",
        account_sid="AC" + "0" * 32,
        message_sid=SM_SID,
        media_urls=urls,
    )
    values = dict(params)

    assert values["NumMedia"] == "2"
    assert values["MediaUrl0"] == urls[0]
    assert values["MediaUrl1"] == urls[1]
    assert values["MediaContentType1"] == "image/jpeg"


@pytest.mark.parametrize("value", ["hello", "4155550123", "+1415", "+1 415 555 0123 999", ""])
def test_a_malformed_number_is_refused(value: str) -> None:
    with pytest.raises(SimulatorError):
        parse_e164(value)


def test_numbers_are_normalised_to_e164_and_fictional_ones_accepted() -> None:
    assert parse_e164(" +1 (415) 555-0123 ") == CONSTITUENT
    number = parse_e164(fictional_number())
    assert re.fullmatch(r"\+1\d{3}55501\d{2}", number)
    assert number[2:5] not in DEMO_AREA_CODES  # a simulated text comes from a new constituent


# --- over HTTP against a live server ----------------------------------------------------------------------


def test_simulated_text_is_stored_for_the_office_that_owns_the_number(
    live_office: Any, live_base_url: str, settings: Any
) -> None:
    other: Any = factories.OfficeFactory.create(slug="beta")
    factories.PhoneNumberFactory.create(office=other, e164="+14155550101")

    result = send(live_base_url, settings)

    assert result.status_code == 200
    assert result.message_sid.startswith("SM")
    assert "<Response" in result.body
    message = Message.objects.select_related("conversation__constituent").get(provider_sid=result.message_sid)
    assert message.office_id == live_office.pk
    assert (message.direction, message.channel) == (Direction.INBOUND, Channel.SMS)
    assert message.body == "Please fix the potholes on Valencia St."
    constituent = message.conversation.constituent
    assert (constituent.office_id, constituent.phone) == (live_office.pk, CONSTITUENT)
    assert constituent.carrier_city == "SAN FRANCISCO"
    assert not Constituent.objects.filter(office=other).exists()


def test_wrong_auth_token_is_rejected_with_403_and_nothing_is_stored(
    live_office: Any, live_base_url: str, settings: Any
) -> None:
    result = send(live_base_url, settings, auth_token="not-the-token")

    assert result.status_code == 403
    assert not result.ok
    assert not Message.objects.exists()
    assert not Constituent.objects.exists()


def test_signature_covers_the_url_so_a_different_public_url_is_rejected(
    live_office: Any, live_server: Any, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = "https://civicdesk.example.org"

    result = send(live_server.url, settings)

    assert result.status_code == 403
    assert not Message.objects.exists()


def test_unreachable_server_raises_a_readable_error() -> None:
    with pytest.raises(SimulatorError, match="Could not reach"):
        simulate_inbound_sms(
            base_url=f"http://127.0.0.1:{closed_port()}",
            to=OFFICE_NUMBER,
            from_=CONSTITUENT,
            body="Hi",
            auth_token="token",
            account_sid="",
        )


def test_an_empty_auth_token_is_refused_before_any_request() -> None:
    with pytest.raises(SimulatorError, match="TWILIO_AUTH_TOKEN"):
        simulate_inbound_sms(
            base_url="http://127.0.0.1:9",
            to=OFFICE_NUMBER,
            from_=CONSTITUENT,
            body="Hi",
            auth_token="",
            account_sid="",
        )


# --- manage.py simulate_sms -------------------------------------------------------------------------------


def test_command_sends_a_text_to_the_live_server(live_office: Any, live_base_url: str) -> None:
    out = StringIO()

    call_command(
        "simulate_sms", "--to", OFFICE_NUMBER, "--from", CONSTITUENT, "--body", "From the CLI", stdout=out
    )

    assert "HTTP 200" in out.getvalue()
    message = Message.objects.get(body="From the CLI")
    assert message.office_id == live_office.pk


def test_command_reports_a_bad_number_without_a_traceback() -> None:
    with pytest.raises(CommandError, match=r"E\.164"):
        call_command(
            "simulate_sms",
            "--to",
            OFFICE_NUMBER,
            "--from",
            "555-0123",
            "--body",
            "Hi",
            "--base-url",
            "http://x",
        )


def test_command_reports_an_unreachable_server(settings: Any) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    with pytest.raises(CommandError, match="Is the server running"):
        call_command(
            "simulate_sms",
            "--to",
            OFFICE_NUMBER,
            "--from",
            CONSTITUENT,
            "--body",
            "Hi",
            "--base-url",
            base_url,
        )


def test_command_reports_a_rejected_signature(live_office: Any, live_base_url: str) -> None:
    with pytest.raises(CommandError, match="rejected the signature"):
        call_command(
            "simulate_sms",
            *("--to", OFFICE_NUMBER, "--from", CONSTITUENT, "--body", "Hi", "--auth-token", "wrong"),
            stdout=StringIO(),
        )


# --- the staff page ---------------------------------------------------------------------------------------


def simulator_url(slug: str = "alpha") -> str:
    return f"/o/{slug}/simulator/"


def member_client(office: Any, role: str) -> Client:
    membership: Any = factories.MembershipFactory.create(office=office, role=role)
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = True


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_mode")
def test_page_shows_a_labelled_form_with_only_this_offices_texting_numbers() -> None:
    office = factories.OfficeFactory.create(slug="alpha")
    factories.PhoneNumberFactory.create(office=office, e164=OFFICE_NUMBER, label="Main line")
    factories.PhoneNumberFactory.create(office=office, e164="+18005550100", number_type=NumberType.TOLL_FREE)
    factories.PhoneNumberFactory.create(
        office=office, e164="+14155550102", sms_enabled=False, voice_enabled=True
    )
    factories.PhoneNumberFactory.create(
        office=factories.OfficeFactory.create(slug="beta"), e164="+14155550103"
    )

    response = member_client(office, Role.STAFF).get(simulator_url())

    assert response.status_code == 200
    html = response.content.decode()
    for field in ("id_from_number", "id_to_number", "id_body"):
        assert f'<label for="{field}">' in html
    assert f'value="{OFFICE_NUMBER}"' in html
    assert 'value="+18005550100"' in html
    assert "+14155550102" not in html  # voice only
    assert "+14155550103" not in html  # another office's
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # strict CSP: no inline script
    assert "style=" not in html


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_mode")
def test_page_is_404_for_a_non_member() -> None:
    factories.OfficeFactory.create(slug="alpha")
    outsider = member_client(factories.OfficeFactory.create(slug="beta"), Role.ADMIN)

    assert outsider.get(simulator_url()).status_code == 404
    assert outsider.post(simulator_url(), {"body": "x"}).status_code == 404


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_mode")
def test_page_is_403_for_the_official_role() -> None:
    official = member_client(factories.OfficeFactory.create(slug="alpha"), Role.OFFICIAL)

    assert official.get(simulator_url()).status_code == 403
    assert official.post(simulator_url(), {"body": "x"}).status_code == 403


@pytest.mark.django_db
def test_page_is_404_when_demo_mode_is_off(settings: Any) -> None:
    settings.DEMO_MODE = False
    office = factories.OfficeFactory.create(slug="alpha")

    assert member_client(office, Role.ADMIN).get(simulator_url()).status_code == 404
    assert Client().get(simulator_url()).status_code == 404


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_mode")
def test_page_refuses_another_offices_number_without_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    office = factories.OfficeFactory.create(slug="alpha")
    factories.PhoneNumberFactory.create(office=office, e164=OFFICE_NUMBER)
    factories.PhoneNumberFactory.create(
        office=factories.OfficeFactory.create(slug="beta"), e164="+14155550103"
    )
    monkeypatch.setattr("demo.views.simulate_inbound_sms", pytest.fail)

    response = member_client(office, Role.STAFF).post(
        simulator_url(), {"from_number": CONSTITUENT, "to_number": "+14155550103", "body": "Hi"}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.usefixtures("demo_mode")
def test_page_sends_through_the_webhook_and_redirects_to_the_inbox(
    live_office: Any, live_base_url: str
) -> None:
    staff = member_client(live_office, Role.STAFF)

    response = staff.post(
        simulator_url(), {"from_number": CONSTITUENT, "to_number": OFFICE_NUMBER, "body": "From the page"}
    )

    assert response.status_code == 302
    assert response["Location"] == "/o/alpha/"
    notices = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("received by the webhook" in notice for notice in notices), notices
    message = Message.objects.get(body="From the page")
    assert message.office_id == live_office.pk
    assert message.conversation.constituent.phone == CONSTITUENT


@pytest.mark.django_db
@pytest.mark.usefixtures("demo_mode")
def test_page_explains_an_unreachable_server_and_keeps_the_form(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{closed_port()}"
    office = factories.OfficeFactory.create(slug="alpha")
    factories.PhoneNumberFactory.create(office=office, e164=OFFICE_NUMBER)

    response = member_client(office, Role.STAFF).post(
        simulator_url(), {"from_number": CONSTITUENT, "to_number": OFFICE_NUMBER, "body": "Still here"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "The text was not sent: Could not reach" in html
    assert "Still here</textarea>" in html
    assert not Message.objects.exists()
