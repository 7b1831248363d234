"""Text the app as a constituent would, with no Twilio account: a signed inbound-SMS webhook over HTTP.

The request is what Twilio sends: the same form fields (built by ``messages.twilio.payloads``),
form-encoded, signed with Twilio's signature header for the exact URL posted to. So a simulated text runs
the real path (signature check, parsing, intake, the worker) and nothing is faked on the way in.

Used by ``manage.py simulate_sms`` and the staff "text simulator" page (DEMO_MODE only). It is not a
webhook view: it makes an outbound HTTP request, which webhook views must never do.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

import phonenumbers
import requests
from django.urls import reverse

from messages.segments import segment_info
from messages.twilio.payloads import inbound_sms_form
from messages.twilio.signatures import SIGNATURE_HEADER, sign

TIMEOUT_SECONDS = 10
# Used when the deployment has no TWILIO_ACCOUNT_SID (the offline demo). The webhook only needs an AC SID
# of the right shape; the signature, made with the auth token, is what authenticates the request.
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32
SUCCESS_STATUSES = range(HTTPStatus.OK, HTTPStatus.MULTIPLE_CHOICES)  # 2xx
# Every North American area code reserves 555-0100..555-0199 for fiction. These area codes are not used by
# the demo seed (demo.seed.AREA_CODES), so a simulated text comes from a new constituent.
FICTIONAL_AREA_CODES = ("209", "559", "805", "916")
MAX_BODY_LENGTH = 1600
MAX_MEDIA = 10


class SimulatorError(Exception):
    """The simulated text could not be sent; the message says why, for a person to read."""


@dataclass(frozen=True, slots=True)
class SimulatedResult:
    status_code: int
    message_sid: str
    body: str
    url: str

    @property
    def ok(self) -> bool:
        return self.status_code in SUCCESS_STATUSES


def fictional_number() -> str:
    """A random fictional US mobile number, +1 AAA 555-01XX."""
    area = secrets.choice(FICTIONAL_AREA_CODES)
    return f"+1{area}55501{secrets.randbelow(100):02d}"


def parse_e164(value: str) -> str:
    """``value`` as an E.164 number, or SimulatorError. Must start with ``+`` and be a possible number.

    "Possible", not "valid": validity rejects the fictional 555-01XX numbers demos use.
    """
    text = value.strip()
    if not text.startswith("+"):
        raise SimulatorError(
            f"{value!r} is not in E.164 form: start with + and the country code, e.g. +14155550123."
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise SimulatorError(f"{value!r} is not a phone number: {exc}.") from None
    if not phonenumbers.is_possible_number(number):
        raise SimulatorError(f"{value!r} has the wrong number of digits for its country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _location(e164: str) -> tuple[str, str, str]:
    """(country, state, city) of a number as Twilio reports a carrier's location: upper-case city."""
    number = phonenumbers.parse(e164, None)
    country = phonenumbers.region_code_for_number(number) or ""
    # phonenumbers' geocoder loads about 100 MB of place names: only a process that simulates a text pays
    # for them, not every worker and web process that imports this module.
    from phonenumbers import geocoder  # noqa: PLC0415

    place = geocoder.description_for_number(number, "en")
    city, _, state = place.rpartition(", ")
    if country in ("US", "CA") and city:
        return country, state, city.upper()
    return country, "", ""


def new_message_sid(*, has_media: bool = False) -> str:
    return ("MM" if has_media else "SM") + secrets.token_hex(16)


def inbound_sms_params(
    *, to: str, from_: str, body: str, account_sid: str, message_sid: str, media_urls: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Twilio's incoming-message webhook body, as Twilio sends it. Media types are guessed."""
    to_country, to_state, to_city = _location(to)
    from_country, from_state, from_city = _location(from_)
    return inbound_sms_form(
        account_sid=account_sid,
        message_sid=message_sid,
        from_number=from_,
        to_number=to,
        body=body,
        media=[(url, "image/jpeg") for url in media_urls],
        num_segments=segment_info(body).segments if body and not media_urls else 1,
        from_city=from_city,
        from_state=from_state,
        from_country=from_country,
        to_city=to_city,
        to_state=to_state,
        to_country=to_country,
    )


def simulate_inbound_sms(
    *,
    base_url: str,
    to: str,
    from_: str,
    body: str,
    auth_token: str,
    account_sid: str,
    media_urls: Sequence[str] = (),
) -> SimulatedResult:
    """POST one signed inbound-SMS webhook to ``base_url``'s ``twilio:sms-received`` URL, as Twilio would.

    Makes one outbound HTTP request (10 s timeout); raises SimulatorError for bad input or no answer.
    The app must validate signatures against the same URL: its ``PUBLIC_BASE_URL`` should be ``base_url``.
    """
    if not auth_token:
        raise SimulatorError(
            "No Twilio auth token: the webhook rejects unsigned requests. Set TWILIO_AUTH_TOKEN (any value "
            "works for the offline demo, as long as the server uses the same one)."
        )
    if not base_url.startswith(("http://", "https://")):
        raise SimulatorError(f"The base URL {base_url!r} must start with http:// or https://.")
    to_e164, from_e164 = parse_e164(to), parse_e164(from_)
    if len(body) > MAX_BODY_LENGTH:
        raise SimulatorError(
            f"Twilio accepts at most {MAX_BODY_LENGTH} characters; this text has {len(body)}."
        )
    if len(media_urls) > MAX_MEDIA:
        raise SimulatorError(f"Twilio sends at most {MAX_MEDIA} media per message.")
    if not body and not media_urls:
        raise SimulatorError("Write a message (or attach media) before sending.")
    message_sid = new_message_sid(has_media=bool(media_urls))
    params = inbound_sms_params(
        to=to_e164,
        from_=from_e164,
        body=body,
        account_sid=account_sid or PLACEHOLDER_ACCOUNT_SID,
        message_sid=message_sid,
        media_urls=media_urls,
    )
    url = base_url.rstrip("/") + reverse("twilio:sms-received")
    headers = {SIGNATURE_HEADER: sign(url, params, auth_token), "User-Agent": "civicdesk-simulator/1.0"}
    try:
        response = requests.post(
            url, data=params, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.Timeout:
        raise SimulatorError(f"{url} did not answer within {TIMEOUT_SECONDS} s.") from None
    except requests.RequestException as exc:
        raise SimulatorError(
            f"Could not reach {url} ({type(exc).__name__}). Is the server running?"
        ) from None
    return SimulatedResult(
        status_code=response.status_code, message_sid=message_sid, body=response.text[:2000], url=url
    )
