"""Verify that a webhook really comes from Twilio (``X-Twilio-Signature``), and sign simulated ones.

How Twilio signs (https://www.twilio.com/docs/usage/webhooks/webhooks-security): HMAC-SHA1, keyed with
the account's Auth Token, over the full URL Twilio requested followed by every POST parameter name and
value, sorted by name. The SDK's ``RequestValidator`` implements this; what it cannot know, and this
module supplies, is:

- the public URL Twilio called (behind a proxy Django sees a different scheme/host);
- every value of a repeated parameter: ``RequestValidator`` calls ``getlist()`` on a Django ``QueryDict``
  but falls back to ``params[name]`` (a single value) for a plain dict, so we pass ``request.POST``
  itself, never ``.dict()``;
- which Auth Token applies (the main account's, or an office's subaccount).

Settings read (lazily): ``PUBLIC_BASE_URL`` (default ``""``), ``TWILIO_AUTH_TOKEN`` (default ``""``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Concatenate, ParamSpec, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponseForbidden, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator

from messages.twilio.forms import parse_form_body
from messages.twilio.payloads import ACCOUNT_SID_PREFIXES, is_sid, normalize_phone

if TYPE_CHECKING:
    from offices.selectors import TwilioSubaccount

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"

# Twilio sends webhooks form-encoded. The signature covers only form parameters, so a body of any
# other type (e.g. JSON) would reach the view unauthenticated: refuse it.
_SIGNED_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponseBase]
Params = Mapping[str, str] | Sequence[tuple[str, str]]


def request_public_url(request: HttpRequest) -> str:
    """The exact URL Twilio requested, query string included.

    ``settings.PUBLIC_BASE_URL`` (scheme and host, e.g. ``https://civic.example.org``, no path) wins when
    set. Otherwise Django builds the URL itself, which honours ``SECURE_PROXY_SSL_HEADER`` and
    ``USE_X_FORWARDED_HOST``: trusted forwarded headers are configured there, never parsed here.
    The SDK also tries the URL with and without an explicit :443/:80, so either form validates.
    """
    base = str(getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    if base:
        return base + request.get_full_path()
    return request.build_absolute_uri()


def _as_multivalue(params: Params | MultiValueDict[str, str]) -> MultiValueDict[str, str]:
    if isinstance(params, MultiValueDict):
        return params
    result: MultiValueDict[str, str] = MultiValueDict()
    items = params.items() if isinstance(params, Mapping) else params
    for key, value in items:
        result.appendlist(key, value)
    return result


def sign(url: str, params: Params | MultiValueDict[str, str], auth_token: str) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a form POST of ``params`` to ``url``.

    Pass a list of pairs (or a ``QueryDict``) to sign repeated keys; used by the simulator and tests.
    """
    return str(RequestValidator(auth_token).compute_signature(url, _as_multivalue(params)))


def is_valid_twilio_request(request: HttpRequest, auth_tokens: Sequence[str]) -> bool:
    """True if the request's signature matches any of ``auth_tokens``.

    A missing signature header, an empty token list or a body that is not form data is invalid.
    """
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature or not auth_tokens:
        return False
    if request.content_type not in _SIGNED_CONTENT_TYPES:
        return False
    if request.content_type == "multipart/form-data" and request.FILES:
        return False  # uploaded files are not covered by the signature
    url = request_public_url(request)
    # A QueryDict is a dict of each key's list of values (django-stubs type it as a dict of single values).
    params = _SignedParams(dict.items(cast("dict[str, list[str]]", request.POST)))
    return any(token and _signature_matches(token, url, params, signature) for token in auth_tokens)


class _SignedParams(dict[str, list[str]]):
    """Every value of every POST parameter, for ``RequestValidator``.

    The SDK reads a parameter's values with ``getall()`` if the mapping has it, else ``getlist()`` (a
    ``QueryDict``: an ``AttributeError`` raised and caught for each of a webhook's ~20 parameters), else as
    one value. Both are answered here straight from the lists.
    """

    def getall(self, name: str) -> list[str]:
        return self[name]

    getlist = getall


def _signature_matches(token: str, url: str, params: Params | _SignedParams, signature: str) -> bool:
    """The SDK's check, exact URL first.

    ``RequestValidator.validate`` always computes two signatures (the URL with and without its default
    port). Twilio signs the URL it called, which is almost always exactly the URL we rebuilt, so that one is
    tried first; only a mismatch falls back to ``validate`` and its port variants. A match is a signature
    over this very URL and these parameters, so the answer is the same, in half the work.
    """
    validator = RequestValidator(token)
    if hmac.compare_digest(validator.compute_signature(url, params), signature):
        return True
    return bool(validator.validate(url, params, signature))


def _subaccount(account_sid: str) -> TwilioSubaccount | None:
    """The office subaccount ``account_sid`` (its token and office), if one is configured.

    A module-level function so tests can monkeypatch it. Malformed SIDs never reach the database.
    """
    if not is_sid(account_sid, ACCOUNT_SID_PREFIXES):
        return None
    # Imported here: `offices` sits below `messages` in the dependency order, and importing it at
    # module load would require the app registry to be ready.
    from offices.selectors import twilio_subaccount_for

    return twilio_subaccount_for(account_sid=account_sid)


# The parameters in which Twilio names the message, call or recording a webhook is about.
_SID_PARAMS = ("MessageSid", "SmsMessageSid", "SmsSid", "CallSid", "ParentCallSid", "RecordingSid")
# Where a request names a SID in its query string: the staff leg's callback names the caller's call.
_SID_QUERY_PARAMS = ("call",)
# The request attribute that records whose token signed it (see signed_for_office_id).
_SIGNED_FOR = "_twilio_signed_for_office_id"


def signed_for_office_id(request: HttpRequest) -> int | None:
    """The office whose own subaccount token signed this webhook; None for the deployment's token.

    A webhook signed with the deployment's token may concern any office: whoever holds that token runs
    the deployment. One signed with an office's subaccount token may concern only that office.
    """
    office_id: int | None = getattr(request, _SIGNED_FOR, None)
    return office_id


def _other_office_named(request: HttpRequest, office_id: int, routed_by: str | None) -> str | None:
    """Why a webhook signed for ``office_id`` reaches into another office, or None if it does not.

    Anyone who can add a subaccount to their office chooses its token, so a valid signature proves only
    that the sender holds *that office's* token. The request may then name only that office's number (the
    parameter the webhook is routed by) and only SIDs that are unknown or that office's own.
    """
    from messages.selectors.provider import provider_sid_office_ids
    from offices.selectors import office_number_route_for

    if routed_by:
        to = normalize_phone(request.POST.get(routed_by, ""))
        route = office_number_route_for(e164=to) if to else None
        if route is not None and route.office_id != office_id:
            return f"{routed_by} is another office's number"
    sids = {value for name in _SID_PARAMS for value in request.POST.getlist(name) if value}
    sids.update(value for name in _SID_QUERY_PARAMS for value in request.GET.getlist(name) if value)
    if provider_sid_office_ids(sids=sids) - {office_id}:
        return "it names another office's message or call"
    return None


def _reject(request: HttpRequest, reason: str) -> HttpResponseForbidden:
    account_sid = request.POST.get("AccountSid", "")
    logger.warning(
        # %r for the path: it is attacker-controlled and may contain decoded newlines.
        "Rejected Twilio webhook %r: %s (AccountSid=%s, remote_addr=%s)",
        request.path,
        reason,
        account_sid if is_sid(account_sid, ACCOUNT_SID_PREFIXES) else "(missing or malformed)",
        request.META.get("REMOTE_ADDR", ""),
    )
    return HttpResponseForbidden("Invalid Twilio signature")


def twilio_webhook(*, routed_by: str | None) -> Callable[[View[P]], View[P]]:
    """Decorator for Twilio webhook views: POST only (405), valid signature or 403, CSRF-exempt.

    ``webhook_refusal`` decides; see it for the rules.
    """

    def decorate(view: View[P]) -> View[P]:
        @wraps(view)
        def wrapped(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
            refusal = webhook_refusal(request, routed_by=routed_by)
            if refusal is not None:
                return refusal
            return view(request, *args, **kwargs)

        return csrf_exempt(wrapped)

    return decorate


def webhook_refusal(request: HttpRequest, *, routed_by: str | None) -> HttpResponseBase | None:
    """None if a Twilio webhook view may run on ``request``; else the answer to send instead (405 or 403).

    405 unless the request is a POST. 403 for a bad or missing signature whatever ``DEBUG`` says: a webhook
    that accepts unsigned requests in development gets deployed that way sooner or later.
    Tokens tried: ``settings.TWILIO_AUTH_TOKEN``, then the subaccount token for the posted
    ``AccountSid`` (looked up only if the first does not match, to spare a query). A request signed with a
    subaccount's token is also refused (403, nothing stored) if it reaches into another office: by the
    number in ``routed_by`` (the parameter the service routes by, e.g. ``To``), or by a SID. A request
    signed with a subaccount's token is marked with its office (``signed_for_office_id``).

    A plain function rather than the body of the decorator's closure, so the whole check is one unit that
    tests (and mutation testing, which mutates only module-level functions) reach directly.
    """
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    parse_form_body(request)
    if not request.headers.get(SIGNATURE_HEADER):
        return _reject(request, "missing signature header")
    main_token = str(getattr(settings, "TWILIO_AUTH_TOKEN", "") or "")
    if main_token and is_valid_twilio_request(request, [main_token]):
        return None
    sub = _subaccount(request.POST.get("AccountSid", ""))
    sub_token = sub.auth_token if sub is not None else ""
    if (
        sub is not None
        and sub_token
        and sub_token != main_token
        and is_valid_twilio_request(request, [sub_token])
    ):
        trespass = _other_office_named(request, sub.office_id, routed_by)
        if trespass is not None:
            return _reject(request, f"signed with office {sub.office_id}'s subaccount, but {trespass}")
        setattr(request, _SIGNED_FOR, sub.office_id)
        return None
    if not main_token and not sub_token:
        return _reject(request, "no Auth Token configured for this account")
    return _reject(request, "signature does not match")


# Most webhooks are routed by the office number Twilio was called on: an inbound text or call, and every
# callback about the caller's leg of a call.
twilio_signature_required = twilio_webhook(routed_by="To")
