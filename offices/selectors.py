"""Reads of office (tenant) data."""

from __future__ import annotations

import threading
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time
from time import monotonic
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Exists, Prefetch, Q, QuerySet
from django.db.models.fields.files import FieldFile

from offices.models import (
    ASSIGNABLE_ROLES,
    IvrMenu,
    IvrOption,
    Membership,
    NumberType,
    Office,
    OfficeHoliday,
    OfficeHours,
    OfficePhoneNumber,
    TwilioAccount,
)


def office_phone_number_for(*, e164: str) -> OfficePhoneNumber | None:
    """The office number a webhook's ``To`` names, with its office and Twilio account, or None."""
    return OfficePhoneNumber.objects.select_related("office", "twilio_account").filter(e164=e164).first()


@dataclass(frozen=True, slots=True)
class NumberRoute:
    """Where texts to one of the offices' numbers go: all the inbound-text webhook needs of the number."""

    office_id: int
    number_id: int
    is_toll_free: bool


_route_cache: dict[str, tuple[float, NumberRoute | None]] = {}
_route_lock = threading.Lock()
_ROUTE_CACHE_MAX_ENTRIES = 10_000  # bounded: unknown numbers are attacker-chosen


def office_number_route_for(*, e164: str) -> NumberRoute | None:
    """The route for a webhook's ``To`` number, at most ``OFFICE_NUMBER_CACHE_SECONDS`` old; None if unknown.

    Every inbound text and call reads it, and numbers change a few times a year: a per-process cache of a
    few seconds takes a query off every webhook. A number moved to another office routes to the new one
    within that many seconds in every process; an unknown number is cached too, so a flood to a number we
    do not own costs no queries.
    """
    ttl = float(getattr(settings, "OFFICE_NUMBER_CACHE_SECONDS", 0) or 0)
    now = monotonic()
    if ttl > 0:
        with _route_lock:
            cached = _route_cache.get(e164)
        if cached is not None and cached[0] > now:
            return cached[1]
    row = OfficePhoneNumber.objects.filter(e164=e164).values_list("office_id", "pk", "number_type").first()
    route = (
        NumberRoute(office_id=row[0], number_id=row[1], is_toll_free=row[2] == NumberType.TOLL_FREE)
        if row
        else None
    )
    if ttl > 0:
        with _route_lock:
            if len(_route_cache) > _ROUTE_CACHE_MAX_ENTRIES:
                _route_cache.clear()
            _route_cache[e164] = (now + ttl, route)
    return route


def office_number_routes_clear() -> None:
    """Forget cached number routes (this process only)."""
    with _route_lock:
        _route_cache.clear()


def membership_for(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Membership | None:
    """The user's membership of the office with this slug, or None (not a member, or no such office)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("office").filter(user_id=user.pk, office__slug=slug).first()


def is_assignable(*, office_id: int, user: AbstractBaseUser) -> bool:
    """True if ``user`` may own conversations of the office: an admin or staff member of it (one query)."""
    return Membership.objects.filter(office_id=office_id, user_id=user.pk, role__in=ASSIGNABLE_ROLES).exists()


def member_for_phone(*, office_id: int, e164: str) -> Membership | None:
    """The member of the office who answers forwarded calls on ``e164``, with their account, or None.

    One query, answered by the partial unique index on (office, phone): a blank number is no one's phone.
    """
    if not e164:
        return None
    return (
        Membership.objects.select_related("user")
        .filter(office_id=office_id, phone=e164)
        .exclude(phone="")
        .first()
    )


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The account a name names: ``user`` (or None), and whether an email address fits several."""

    user: User | None
    ambiguous: bool = False


def account_named(*, identifier: str) -> AccountMatch:
    """The account with exactly this username, else the one with this email address (case ignored).

    Adding someone to an office names them exactly: nobody browses the platform's accounts. An email address
    that two accounts share names neither of them (``ambiguous``): the username must be given then.
    """
    accounts = get_user_model()._default_manager.filter(Q(username=identifier) | Q(email__iexact=identifier))
    users = cast(list[User], list(accounts[:3]))  # the project's user model is Django's own
    by_username = [user for user in users if user.get_username() == identifier]
    if by_username:
        return AccountMatch(by_username[0])
    if len(users) > 1:
        return AccountMatch(None, ambiguous=True)
    return AccountMatch(users[0] if users else None)


def memberships_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.select_related("office").filter(user_id=user.pk).order_by("office__name")


def office_ids_for_user(*, user: AbstractBaseUser) -> list[int]:
    return list(Membership.objects.filter(user_id=user.pk).values_list("office_id", flat=True))


def office_phone_numbers(*, office: Office) -> QuerySet[OfficePhoneNumber]:
    return OfficePhoneNumber.objects.filter(office=office).select_related("twilio_account")


def twilio_auth_token_for_account(*, account_sid: str) -> str | None:
    """The auth token of a per-office Twilio (sub)account, e.g. to fetch its media and recordings."""
    subaccount = twilio_subaccount_for(account_sid=account_sid)
    return subaccount.auth_token if subaccount is not None else None


@dataclass(frozen=True, slots=True)
class TwilioSubaccount:
    """An office's own Twilio (sub)account: the token its webhooks are signed with, and whose they are."""

    auth_token: str
    office_id: int


def twilio_subaccount_for(*, account_sid: str) -> TwilioSubaccount | None:
    """The office (sub)account ``account_sid``, for webhook signature validation; None if not configured."""
    if not account_sid:
        return None
    row = TwilioAccount.objects.filter(account_sid=account_sid).values_list("auth_token", "office_id").first()
    return TwilioSubaccount(auth_token=row[0], office_id=row[1]) if row else None


@dataclass(frozen=True, slots=True)
class TwilioCredentials:
    account_sid: str
    auth_token: str


def twilio_credentials_for(*, phone_number: OfficePhoneNumber) -> TwilioCredentials:
    """The account a number sends from: its own (sub)account if set, else the deployment's."""
    account = phone_number.twilio_account
    if account is not None:
        return TwilioCredentials(account.account_sid, account.auth_token)
    return TwilioCredentials(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)


# --- Voice hotline: office hours and IVR menus -----------------------------------------------------


def office_is_open(*, office: Office, at: datetime) -> bool:
    """True if ``at`` falls in one of the office's hours, read in the office's time zone, and is no holiday.

    Intervals are half-open (``opens_at <= t < closes_at``). Several rows on one weekday make split shifts.
    """
    local = at.astimezone(zoneinfo.ZoneInfo(office.time_zone))
    now = local.time().replace(tzinfo=None)
    holiday = OfficeHoliday.objects.filter(office=office, date=local.date())
    hours = OfficeHours.objects.filter(office=office, weekday=local.weekday())
    return hours.filter(opens_at__lte=now, closes_at__gt=now).filter(~Exists(holiday)).exists()  # one query


def ivr_main_menu(*, office: Office) -> IvrMenu | None:
    """The menu every call starts with, with its options, or None if the office has not set one up."""
    return (
        IvrMenu.objects.filter(office=office, is_main=True)
        .prefetch_related(Prefetch("options", queryset=IvrOption.objects.order_by("digit")))
        .first()
    )


def ivr_menu_get(*, office: Office, pk: int) -> IvrMenu | None:
    """One of the office's menus, with its options."""
    return (
        IvrMenu.objects.filter(office=office, pk=pk)
        .prefetch_related(Prefetch("options", queryset=IvrOption.objects.order_by("digit")))
        .first()
    )


def ivr_option_get(*, office: Office, pk: int) -> IvrOption | None:
    """One option of one of the office's menus."""
    return IvrOption.objects.filter(menu__office=office, pk=pk).select_related("menu").first()


def ivr_menus(*, office: Office) -> QuerySet[IvrMenu]:
    """All of the office's menus, main first, with their options."""
    return IvrMenu.objects.filter(office=office).prefetch_related("options")


def ivr_audio_get(*, office_id: int, menu_id: int, field: str) -> FieldFile | None:
    """An uploaded greeting (``greeting_audio`` or ``after_hours_audio``) of one of the office's menus."""
    if field not in ("greeting_audio", "after_hours_audio"):
        return None
    menu = IvrMenu.objects.filter(office_id=office_id, pk=menu_id).only("pk", "office_id", field).first()
    audio: FieldFile | None = getattr(menu, field, None) if menu is not None else None
    return audio if audio else None


@dataclass(frozen=True, slots=True)
class OfficeSchedule:
    """An office's opening hours and holidays, to answer "is it open at …?" without a query."""

    time_zone: str
    hours: tuple[tuple[int, time, time], ...]  # (weekday, opens_at, closes_at)
    holidays: frozenset[date]

    def is_open(self, at: datetime) -> bool:
        """The rule of :func:`office_is_open`, in memory."""
        local = at.astimezone(zoneinfo.ZoneInfo(self.time_zone))
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        return any(day == weekday and opens <= now < closes for day, opens, closes in self.hours)


def office_schedule(*, office: Office) -> OfficeSchedule:
    """The office's hours and holidays (two queries)."""
    hours = OfficeHours.objects.filter(office=office).values_list("weekday", "opens_at", "closes_at")
    holidays = OfficeHoliday.objects.filter(office=office).values_list("date", flat=True)
    return OfficeSchedule(office.time_zone, tuple(hours), frozenset(holidays))
