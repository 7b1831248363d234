from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from messages.twilio.errors import PayloadError
from messages.twilio.payloads import (
    InboundMedia,
    InboundSms,
    inbound_sms_form,
    normalize_phone,
    parse_delivery_status,
    parse_inbound_sms,
)

ACCOUNT = "AC" + "a" * 32
MESSAGE = "SM" + "1" * 32
MMS = "MM" + "2" * 32
SERVICE = "MG" + "6" * 32


def form(pairs: dict[str, str] | list[tuple[str, str]]) -> QueryDict:
    items = list(pairs.items()) if isinstance(pairs, dict) else pairs
    return QueryDict(urlencode(items))


def sms_params(**overrides: str) -> dict[str, str]:
    params = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": MESSAGE,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": MESSAGE,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": "Pothole on Main St",
        "FromCountry": "US",
        "To": "+14155550100",
        "MessagingServiceSid": SERVICE,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": MESSAGE,
        "AccountSid": ACCOUNT,
        "From": "+14155552671",
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


# --- phone numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("(415) 555-2671", "+14155552671"),
        ("415.555.2671", "+14155552671"),
        ("+44 7911 123456", "+447911123456"),
        ("+15550100000", "+15550100000"),  # fictional 555-01xx numbers are accepted (possible, not valid)
    ],
)
def test_normalize_phone_returns_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "Anonymous", "12345", "CIVICDESK", "1-800-FLOWERS", "whatsapp:+14155552671", "+1555"]
)
def test_normalize_phone_rejects_non_numbers(raw):
    assert normalize_phone(raw) is None


def test_normalize_phone_reads_national_numbers_in_the_given_region():
    assert normalize_phone("07911 123456", region="GB") == "+447911123456"


# --- inbound SMS -----------------------------------------------------------------------------------


def test_parse_inbound_sms_reads_the_standard_fields():
    sms = parse_inbound_sms(form(sms_params()))
    assert sms.message_sid == MESSAGE
    assert sms.account_sid == ACCOUNT
    assert sms.messaging_service_sid == SERVICE
    assert (sms.from_raw, sms.from_e164) == ("+14155552671", "+14155552671")
    assert (sms.to_raw, sms.to_e164) == ("+14155550100", "+14155550100")
    assert sms.body == "Pothole on Main St"
    assert (sms.num_media, sms.media) == (0, ())
    assert (sms.from_city, sms.from_state, sms.from_zip, sms.from_country) == (
        "SAN FRANCISCO",
        "CA",
        "94105",
        "US",
    )
    assert sms.opt_out_type is None


def test_raw_keeps_every_field_and_is_json_serialisable():
    sms = parse_inbound_sms(form(sms_params()))
    assert sms.raw["ToCity"] == ["SAN FRANCISCO"]
    assert json.loads(json.dumps(sms.raw)) == sms.raw


def test_raw_keeps_duplicate_values():
    pairs = [*sms_params().items(), ("Extra", "1"), ("Extra", "2")]
    assert parse_inbound_sms(form(pairs)).raw["Extra"] == ["1", "2"]


def test_unknown_fields_are_ignored():
    sms = parse_inbound_sms(form(sms_params(SomethingNew="x", Body="hi")))
    assert sms.body == "hi"


def test_plain_dict_is_accepted_too():
    assert parse_inbound_sms(sms_params()).message_sid == MESSAGE


def test_unknown_sender_location_is_empty_string_as_twilio_sends_it():
    params = sms_params(FromZip="")
    del params["FromCity"]
    sms = parse_inbound_sms(form(params))
    assert (sms.from_city, sms.from_zip, sms.from_state) == ("", "", "CA")


def test_short_code_and_alphanumeric_senders_keep_raw_but_have_no_e164():
    assert parse_inbound_sms(form(sms_params(From="72345"))).from_e164 is None
    sms = parse_inbound_sms(form(sms_params(From="CIVICORG")))
    assert (sms.from_raw, sms.from_e164) == ("CIVICORG", None)


def test_body_is_kept_exactly_as_sent_apart_from_nul_bytes():
    sms = parse_inbound_sms(form(sms_params(Body="  two  spaces \n and\x00 a NUL  ")))
    assert sms.body == "  two  spaces \n and a NUL  "


def test_nul_bytes_are_stripped_from_every_string_and_key():
    sms = parse_inbound_sms(form(sms_params(FromCity="SAN\x00 JOSE", **{"Odd\x00Key": "v\x00"})))
    assert sms.from_city == "SAN JOSE"
    assert sms.raw["OddKey"] == ["v"]
    assert not any("\x00" in key or any("\x00" in v for v in values) for key, values in sms.raw.items())


def test_names_that_differ_only_by_nul_bytes_merge_and_raw_is_a_copy():
    post = form([*sms_params().items(), ("Tag\x00", "a"), ("Tag", "b\x00")])
    assert parse_inbound_sms(post).raw["Tag"] == ["a", "b"]
    clean = form(sms_params())
    raw = parse_inbound_sms(clean).raw
    raw["Body"].append("changed")
    assert clean.getlist("Body") == [sms_params()["Body"]]


def test_media_only_message_has_empty_body():
    params = sms_params(NumMedia="1", MediaUrl0="https://api.twilio.com/m/0", MediaContentType0="image/jpeg")
    del params["Body"]
    sms = parse_inbound_sms(form(params))
    assert sms.body == ""
    assert sms.media == (InboundMedia(url="https://api.twilio.com/m/0", content_type="image/jpeg", index=0),)


def test_media_are_collected_by_index_regardless_of_num_media():
    params = sms_params(
        MessageSid=MMS,
        NumMedia="1",  # Twilio says one ...
        MediaUrl0="https://api.twilio.com/m/0",
        MediaContentType0="image/jpeg",
        MediaUrl3="https://api.twilio.com/m/3",  # ... but two are present, with a gap
        MediaContentType3="image/png",
        MediaUrl10="https://api.twilio.com/m/10",  # beyond Twilio's 10-media limit: ignored
    )
    sms = parse_inbound_sms(form(params))
    assert sms.num_media == 1
    assert [(m.index, m.content_type) for m in sms.media] == [(0, "image/jpeg"), (3, "image/png")]


@pytest.mark.parametrize("num_media", ["", "lots", "-1"])
def test_garbage_num_media_falls_back_to_the_media_present(num_media):
    params = sms_params(NumMedia=num_media, MediaUrl0="https://api.twilio.com/m/0")
    assert parse_inbound_sms(form(params)).num_media == 1


def test_sms_sid_is_accepted_when_message_sid_is_missing():
    params = sms_params()
    del params["MessageSid"]
    del params["SmsMessageSid"]
    assert parse_inbound_sms(form(params)).message_sid == MESSAGE


@pytest.mark.parametrize("field", ["MessageSid", "To", "From", "AccountSid"])
def test_missing_required_field_is_a_payload_error(field):
    params = sms_params()
    for name in {field, "SmsMessageSid", "SmsSid"} if field == "MessageSid" else {field}:
        del params[name]
    with pytest.raises(PayloadError, match=field):
        parse_inbound_sms(form(params))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MessageSid", "SM123"),
        ("MessageSid", "CA" + "1" * 32),
        ("MessageSid", "SM" + "G" * 32),
        ("MessageSid", "SM" + "A" * 32),  # Twilio's hex is lower-case
        ("AccountSid", "ACnope"),
        ("MessagingServiceSid", "MGxyz"),
    ],
)
def test_malformed_sids_are_payload_errors(field, value):
    with pytest.raises(PayloadError, match="SID"):
        parse_inbound_sms(form(sms_params(**{field: value})))


def test_body_longer_than_10000_characters_is_a_payload_error():
    parse_inbound_sms(form(sms_params(Body="x" * 10_000)))
    with pytest.raises(PayloadError, match="Body"):
        parse_inbound_sms(form(sms_params(Body="x" * 10_001)))


@pytest.mark.parametrize(("value", "expected"), [("STOP", "STOP"), ("start", "START"), ("HELP", "HELP")])
def test_advanced_opt_out_type_is_read(value, expected):
    assert parse_inbound_sms(form(sms_params(OptOutType=value))).opt_out_type == expected


def test_unknown_opt_out_type_is_none():
    assert parse_inbound_sms(form(sms_params(OptOutType="MAYBE"))).opt_out_type is None


def test_inbound_sms_is_frozen_and_hashable():
    sms = parse_inbound_sms(form(sms_params()))
    with pytest.raises(AttributeError):
        sms.body = "changed"  # type: ignore[misc]  # the frozen field the test writes to
    assert hash(sms) == hash(parse_inbound_sms(form(sms_params())))


# --- status callbacks ------------------------------------------------------------------------------


def status_params(**overrides: str) -> dict[str, str]:
    params = {
        "SmsSid": MESSAGE,
        "SmsStatus": "delivered",
        "MessageStatus": "delivered",
        "To": "+14155552671",
        "MessageSid": MESSAGE,
        "AccountSid": ACCOUNT,
        "From": "+14155550100",
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


def test_parse_delivery_status():
    status = parse_delivery_status(form(status_params()))
    assert (status.message_sid, status.message_status, status.error_code) == (MESSAGE, "delivered", None)
    assert (status.account_sid, status.to_raw, status.from_raw) == (ACCOUNT, "+14155552671", "+14155550100")


def test_delivery_status_is_lower_cased_and_error_code_parsed():
    status = parse_delivery_status(form(status_params(MessageStatus="Undelivered", ErrorCode="30006")))
    assert (status.message_status, status.error_code) == ("undelivered", 30006)


def test_non_numeric_error_code_is_none():
    assert parse_delivery_status(form(status_params(ErrorCode="oops"))).error_code is None


def test_status_falls_back_to_sms_status():
    params = status_params(SmsStatus="sent")
    del params["MessageStatus"]
    assert parse_delivery_status(form(params)).message_status == "sent"


def test_delivery_status_without_status_is_a_payload_error():
    params = status_params()
    del params["MessageStatus"], params["SmsStatus"]
    with pytest.raises(PayloadError, match="MessageStatus"):
        parse_delivery_status(form(params))


# --- the form builder: the inverse of the parser --------------------------------------------------------


def post_of(pairs: list[tuple[str, str]]) -> QueryDict:
    """The form as the webhook view sees it: encoded and decoded again, every pair kept in order."""
    return QueryDict(urlencode(pairs))


def test_inbound_sms_form_parses_back_to_the_same_text() -> None:
    media = [("https://api.twilio.com/m/ME1", "image/jpeg"), ("https://api.twilio.com/m/ME2", "image/png")]
    pairs = inbound_sms_form(
        account_sid=ACCOUNT,
        message_sid=MMS,
        from_number="+14155552671",
        to_number="+14155550100",
        body="  Pothole on Main St\n",
        media=media,
        num_segments=2,
        from_city="OAKLAND",
        from_state="CA",
        from_zip="94612",
        from_country="US",
        to_city="SAN FRANCISCO",
        messaging_service_sid=SERVICE,
        opt_out_type="STOP",
    )

    sms = parse_inbound_sms(post_of(pairs))

    assert sms == InboundSms(
        message_sid=MMS,
        account_sid=ACCOUNT,
        messaging_service_sid=SERVICE,
        from_raw="+14155552671",
        from_e164="+14155552671",
        to_raw="+14155550100",
        to_e164="+14155550100",
        body="  Pothole on Main St\n",
        num_media=2,
        media=(
            InboundMedia(url="https://api.twilio.com/m/ME1", content_type="image/jpeg", index=0),
            InboundMedia(url="https://api.twilio.com/m/ME2", content_type="image/png", index=1),
        ),
        from_city="OAKLAND",
        from_state="CA",
        from_zip="94612",
        from_country="US",
        opt_out_type="STOP",
        raw={},
    )
    # What Twilio sends besides: the SID under its older names, the segment count, the office's location.
    assert (sms.raw["SmsSid"], sms.raw["SmsMessageSid"]) == ([MMS], [MMS])
    assert (sms.raw["NumSegments"], sms.raw["ToCity"], sms.raw["SmsStatus"]) == (
        ["2"],
        ["SAN FRANCISCO"],
        ["received"],
    )


def test_inbound_sms_form_sends_the_optional_fields_only_when_given() -> None:
    pairs = inbound_sms_form(
        account_sid=ACCOUNT,
        message_sid=MESSAGE,
        from_number="+14155552671",
        to_number="+14155550100",
        body="Hi",
    )
    names = [name for name, _ in pairs]
    assert "MessagingServiceSid" not in names
    assert "OptOutType" not in names
    assert not any(name.startswith("Media") for name in names)
    sms = parse_inbound_sms(post_of(pairs))
    assert (sms.messaging_service_sid, sms.opt_out_type, sms.num_media, sms.media) == (None, None, 0, ())
    assert (sms.from_city, sms.from_state, sms.from_zip, sms.from_country) == ("", "", "", "")


def test_inbound_sms_form_refuses_more_media_than_twilio_sends() -> None:
    with pytest.raises(ValueError, match="at most 10"):
        inbound_sms_form(
            account_sid=ACCOUNT,
            message_sid=MMS,
            from_number="+14155552671",
            to_number="+14155550100",
            body="",
            media=[(f"https://api.twilio.com/m/ME{i}", "image/jpeg") for i in range(11)],
        )
