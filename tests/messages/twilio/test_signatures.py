from __future__ import annotations

import logging
import sys
import types
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse, QueryDict
from django.test import RequestFactory, override_settings
from twilio.request_validator import RequestValidator

from messages.twilio import signatures
from messages.twilio.signatures import (
    SIGNATURE_HEADER,
    is_valid_twilio_request,
    request_public_url,
    sign,
    signed_for_office_id,
    twilio_signature_required,
    twilio_webhook,
)
from offices.selectors import TwilioSubaccount

FORM = "application/x-www-form-urlencoded"
PUBLIC = "https://civic.example.org"
TOKEN = "main-token-0123456789"
SUB_TOKEN = "subaccount-token-abcdef"
SUB_ACCOUNT = "AC" + "b" * 32

# Twilio's published example (https://www.twilio.com/docs/usage/security#validating-requests).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.fixture
def rf() -> RequestFactory:
    return RequestFactory()


def signed_post(
    rf: RequestFactory,
    path: str,
    pairs: list[tuple[str, str]],
    *,
    token: str = TOKEN,
    url: str | None = None,
    signature: str | None = None,
) -> HttpRequest:
    signed_url = url if url is not None else PUBLIC + path
    headers = {SIGNATURE_HEADER: signature if signature is not None else sign(signed_url, pairs, token)}
    return rf.post(path, data=urlencode(pairs), content_type=FORM, headers=headers)


# --- the published test vector ---------------------------------------------------------------------


def test_sign_reproduces_twilios_published_signature():
    assert sign(VECTOR_URL, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_SIGNATURE


@override_settings(PUBLIC_BASE_URL="https://mycompany.com")
def test_published_vector_validates_as_a_django_request(rf):
    request = rf.post(
        "/myapp.php?foo=1&bar=2",
        data=urlencode(VECTOR_PARAMS),
        content_type=FORM,
        headers={SIGNATURE_HEADER: VECTOR_SIGNATURE},
    )
    assert is_valid_twilio_request(request, [VECTOR_TOKEN])


@override_settings(PUBLIC_BASE_URL="https://mycompany.com")
def test_tampered_param_fails_the_published_vector(rf):
    tampered = dict(VECTOR_PARAMS, Digits="1235")
    request = rf.post(
        "/myapp.php?foo=1&bar=2",
        data=urlencode(tampered),
        content_type=FORM,
        headers={SIGNATURE_HEADER: VECTOR_SIGNATURE},
    )
    assert not is_valid_twilio_request(request, [VECTOR_TOKEN])


@override_settings(PUBLIC_BASE_URL="https://mycompany.com")
def test_tampered_query_string_fails(rf):
    request = rf.post(
        "/myapp.php?foo=1&bar=3",
        data=urlencode(VECTOR_PARAMS),
        content_type=FORM,
        headers={SIGNATURE_HEADER: VECTOR_SIGNATURE},
    )
    assert not is_valid_twilio_request(request, [VECTOR_TOKEN])


# --- URL reconstruction ----------------------------------------------------------------------------


@override_settings(PUBLIC_BASE_URL="https://civic.example.org/")
def test_public_url_uses_public_base_url_and_keeps_the_query_string(rf):
    request = rf.post("/webhooks/twilio/sms/?office=alpha&x=%20y")
    assert request_public_url(request) == "https://civic.example.org/webhooks/twilio/sms/?office=alpha&x=%20y"


@override_settings(
    PUBLIC_BASE_URL="",
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    USE_X_FORWARDED_HOST=True,
    ALLOWED_HOSTS=["civic.example.org"],
)
def test_public_url_falls_back_to_djangos_trusted_forwarded_headers(rf):
    request = rf.post(
        "/webhooks/twilio/sms/?a=1",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="civic.example.org",
    )
    assert request_public_url(request) == "https://civic.example.org/webhooks/twilio/sms/?a=1"


@override_settings(PUBLIC_BASE_URL="")
def test_forwarded_proto_is_ignored_unless_django_trusts_it(rf):
    request = rf.post("/webhooks/twilio/sms/", HTTP_X_FORWARDED_PROTO="https")
    assert request_public_url(request) == "http://testserver/webhooks/twilio/sms/"


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_signature_made_with_explicit_default_port_still_validates(rf):
    pairs = [("MessageSid", "SM" + "1" * 32)]
    request = signed_post(rf, "/hook/", pairs, url="https://civic.example.org:443/hook/")
    assert is_valid_twilio_request(request, [TOKEN])


# --- parameters ------------------------------------------------------------------------------------


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_duplicate_keys_are_all_signed(rf):
    pairs = [("Body", "hi"), ("MediaUrl", "https://a.example/1"), ("MediaUrl", "https://a.example/2")]
    request = signed_post(rf, "/hook/", pairs)
    assert request.POST.getlist("MediaUrl") == ["https://a.example/1", "https://a.example/2"]
    assert is_valid_twilio_request(request, [TOKEN])

    # The same signature does not cover a body with one of the duplicates removed ...
    forged = signed_post(rf, "/hook/", pairs[:2], signature=request.headers[SIGNATURE_HEADER])
    assert not is_valid_twilio_request(forged, [TOKEN])
    # ... and QueryDict.dict() (last value only) would not have validated the genuine request: the reason
    # request.POST itself is passed to the SDK.
    validator = RequestValidator(TOKEN)
    url = PUBLIC + "/hook/"
    assert not validator.validate(url, request.POST.dict(), request.headers[SIGNATURE_HEADER])


def test_sign_accepts_pairs_mappings_and_querydicts_alike():
    pairs = [("b", "2"), ("a", "1"), ("a", "0")]
    query = QueryDict(urlencode(pairs))
    assert sign("https://x.test/", pairs, TOKEN) == sign("https://x.test/", query, TOKEN)
    assert sign("https://x.test/", {"a": "1"}, TOKEN) == sign("https://x.test/", [("a", "1")], TOKEN)


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_values_are_signed_untrimmed(rf):
    pairs = [("Body", "  spaced  ")]
    request = signed_post(rf, "/hook/", pairs)
    assert request.POST["Body"] == "  spaced  "
    assert is_valid_twilio_request(request, [TOKEN])


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_missing_signature_header_is_invalid(rf):
    request = rf.post("/hook/", data="Body=hi", content_type=FORM)
    assert not is_valid_twilio_request(request, [TOKEN])


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_wrong_token_is_invalid_and_any_matching_token_is_valid(rf):
    request = signed_post(rf, "/hook/", [("Body", "hi")], token=SUB_TOKEN)
    assert not is_valid_twilio_request(request, [TOKEN])
    assert is_valid_twilio_request(request, [TOKEN, SUB_TOKEN])
    assert not is_valid_twilio_request(request, [])


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_json_body_is_never_valid_because_the_signature_does_not_cover_it(rf):
    url = PUBLIC + "/hook/"
    request = rf.post(
        "/hook/",
        data='{"Body": "forged"}',
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(url, [], TOKEN)},
    )
    assert not is_valid_twilio_request(request, [TOKEN])


# --- the decorator ---------------------------------------------------------------------------------


@twilio_signature_required
def echo_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"ok {request.POST.get('Body', '')}")


@pytest.fixture
def no_subaccounts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def lookup(account_sid: str) -> TwilioSubaccount | None:
        asked.append(account_sid)
        return None

    monkeypatch.setattr(signatures, "_subaccount", lookup)
    return asked


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_decorated_view_runs_for_a_valid_signature(rf, no_subaccounts):
    response = echo_view(signed_post(rf, "/hook/", [("Body", "hello")]))
    assert isinstance(response, HttpResponse)
    assert response.status_code == 200
    assert response.content == b"ok hello"
    assert no_subaccounts == []  # the main token matched: no lookup


@pytest.mark.parametrize("debug", [False, True])
def test_bad_signature_is_403_even_in_debug(rf, no_subaccounts, debug):
    with override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN, DEBUG=debug):
        response = echo_view(signed_post(rf, "/hook/", [("Body", "hello")], signature="bm9wZQ=="))
    assert response.status_code == 403


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN, DEBUG=True)
def test_missing_signature_is_403(rf, no_subaccounts):
    response = echo_view(rf.post("/hook/", data="Body=hello", content_type=FORM))
    assert response.status_code == 403


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_non_post_is_405(rf, no_subaccounts):
    response = echo_view(rf.get("/hook/"))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_decorated_view_is_csrf_exempt():
    assert getattr(echo_view, "csrf_exempt", False) is True
    assert echo_view.__name__ == "echo_view"


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_subaccount_token_is_accepted(rf, monkeypatch):
    asked: list[str] = []

    def lookup(account_sid: str) -> TwilioSubaccount | None:
        asked.append(account_sid)
        return TwilioSubaccount(auth_token=SUB_TOKEN, office_id=7) if account_sid == SUB_ACCOUNT else None

    monkeypatch.setattr(signatures, "_subaccount", lookup)
    request = signed_post(rf, "/hook/", [("AccountSid", SUB_ACCOUNT), ("Body", "sub")], token=SUB_TOKEN)
    response = echo_view(request)
    assert response.status_code == 200
    assert asked == [SUB_ACCOUNT]
    assert signed_for_office_id(request) == 7  # the view may touch only the subaccount's office


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN="")
def test_without_any_configured_token_every_request_is_403(rf, no_subaccounts):
    response = echo_view(signed_post(rf, "/hook/", [("Body", "x")], token=""))
    assert response.status_code == 403


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_rejections_are_logged_without_secrets(rf, no_subaccounts, caplog):
    request = signed_post(rf, "/hook/", [("AccountSid", "AC\nforged log line"), ("Body", "x")], token="wrong")
    with caplog.at_level(logging.WARNING, logger="messages.twilio.signatures"):
        assert echo_view(request).status_code == 403
    text = caplog.text
    assert "Rejected Twilio webhook '/hook/'" in text
    assert TOKEN not in text
    assert request.headers[SIGNATURE_HEADER] not in text
    assert "forged log line" not in text  # malformed AccountSid is not echoed into the log


# --- the subaccount lookup -------------------------------------------------------------------------


def test_subaccount_asks_the_office_selector_for_well_formed_sids(monkeypatch):
    calls: list[str] = []
    found = TwilioSubaccount(auth_token="found", office_id=3)

    def twilio_subaccount_for(*, account_sid: str) -> TwilioSubaccount | None:
        calls.append(account_sid)
        return found

    fake_module = types.ModuleType("offices.selectors")
    fake_module.twilio_subaccount_for = twilio_subaccount_for  # type: ignore[attr-defined]  # a stand-in module
    monkeypatch.setitem(sys.modules, "offices.selectors", fake_module)

    assert signatures._subaccount(SUB_ACCOUNT) is found
    assert signatures._subaccount("AC-not-a-sid") is None
    assert signatures._subaccount("") is None
    assert calls == [SUB_ACCOUNT]


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_the_deployment_token_signs_for_every_office(rf, no_subaccounts):
    request = signed_post(rf, "/hook/", [("Body", "hello")])
    assert echo_view(request).status_code == 200
    assert signed_for_office_id(request) is None


# --- what the check refuses, and what it says -------------------------------------------------------


def rejection_logged(caplog: pytest.LogCaptureFixture) -> str:
    [record] = [r for r in caplog.records if r.name == "messages.twilio.signatures"]
    return record.getMessage()


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_a_known_subaccount_with_a_signature_from_no_token_is_403_and_not_marked(rf, monkeypatch):
    monkeypatch.setattr(
        signatures, "_subaccount", lambda sid: TwilioSubaccount(auth_token=SUB_TOKEN, office_id=7)
    )
    request = signed_post(rf, "/hook/", [("AccountSid", SUB_ACCOUNT), ("Body", "x")], token="forged")
    assert echo_view(request).status_code == 403
    assert signed_for_office_id(request) is None


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_a_bad_signature_without_an_account_sid_is_403_through_the_real_subaccount_lookup(rf):
    response = echo_view(signed_post(rf, "/hook/", [("Body", "x")], token="forged"))
    assert response.status_code == 403


@override_settings(PUBLIC_BASE_URL=PUBLIC)
def test_a_multipart_form_validates_but_not_with_an_uploaded_file_the_signature_cannot_cover(rf):
    url = PUBLIC + "/hook/"
    headers = {SIGNATURE_HEADER: sign(url, [("Body", "hi")], TOKEN)}
    plain = rf.post("/hook/", data={"Body": "hi"}, headers=headers)
    assert plain.content_type == "multipart/form-data"
    assert is_valid_twilio_request(plain, [TOKEN])
    upload = SimpleUploadedFile("evil.txt", b"not signed")
    with_file = rf.post("/hook/", data={"Body": "hi", "file": upload}, headers=headers)
    assert with_file.POST.dict() == {"Body": "hi"}  # the signed fields are all there ...
    assert not is_valid_twilio_request(with_file, [TOKEN])  # ... but the file is not signed


@pytest.mark.parametrize(
    ("auth_token", "signature", "reason"),
    [
        (TOKEN, "", "missing signature header"),
        (TOKEN, "bm9wZQ==", "signature does not match"),
        ("", "bm9wZQ==", "no Auth Token configured for this account"),
    ],
)
def test_a_refusal_is_logged_with_path_reason_account_and_address_and_answered_plainly(
    rf, no_subaccounts, caplog, auth_token, signature, reason
):
    pairs = [("AccountSid", SUB_ACCOUNT), ("Body", "x")]
    request = rf.post("/hook/", data=urlencode(pairs), content_type=FORM)
    if signature:
        request = signed_post(rf, "/hook/", pairs, signature=signature)
    with (
        override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=auth_token),
        caplog.at_level(logging.WARNING, logger="messages.twilio.signatures"),
    ):
        response = echo_view(request)
    assert isinstance(response, HttpResponse)
    assert response.status_code == 403
    assert response.content == b"Invalid Twilio signature"
    assert rejection_logged(caplog) == (
        f"Rejected Twilio webhook '/hook/': {reason} (AccountSid={SUB_ACCOUNT}, remote_addr=127.0.0.1)"
    )


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_a_refusal_without_an_account_sid_logs_it_as_missing(rf, no_subaccounts, caplog):
    request = signed_post(rf, "/hook/", [("Body", "x")], signature="bm9wZQ==")
    with caplog.at_level(logging.WARNING, logger="messages.twilio.signatures"):
        assert echo_view(request).status_code == 403
    assert rejection_logged(caplog).endswith("(AccountSid=(missing or malformed), remote_addr=127.0.0.1)")


def test_with_no_auth_token_setting_at_all_every_request_is_refused_as_unconfigured(
    rf, no_subaccounts, caplog, settings
):
    settings.PUBLIC_BASE_URL = PUBLIC
    del settings.TWILIO_AUTH_TOKEN
    request = signed_post(rf, "/hook/", [("Body", "x")], token="")
    with caplog.at_level(logging.WARNING, logger="messages.twilio.signatures"):
        assert echo_view(request).status_code == 403
    assert ": no Auth Token configured for this account (" in rejection_logged(caplog)


def test_with_no_public_base_url_setting_at_all_the_url_is_djangos_own(rf, settings):
    del settings.PUBLIC_BASE_URL
    request = rf.post("/webhooks/twilio/sms/?a=1")
    assert request_public_url(request) == "http://testserver/webhooks/twilio/sms/?a=1"


@override_settings(PUBLIC_BASE_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN)
def test_a_view_decorated_at_run_time_is_csrf_exempt_and_runs_only_when_signed(rf, no_subaccounts):
    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ran")

    guarded = twilio_webhook(routed_by="To")(view)
    assert getattr(guarded, "csrf_exempt", False) is True
    ran = guarded(signed_post(rf, "/hook/", [("Body", "x")]))
    assert isinstance(ran, HttpResponse)
    assert ran.content == b"ran"
    assert guarded(signed_post(rf, "/hook/", [("Body", "x")], token="forged")).status_code == 403
