"""Reads of office (tenant) data."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from offices.models import Membership, Office, OfficePhoneNumber


def office_phone_number_for(*, e164: str) -> OfficePhoneNumber | None:
    """The office number a webhook's ``To`` names, with its office and Twilio account, or None."""
    return (
        OfficePhoneNumber.objects.select_related("office", "twilio_account").filter(e164=e164).first()
    )


def membership_for(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Membership | None:
    """The user's membership of the office with this slug, or None (not a member, or no such office)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("office").filter(user_id=user.pk, office__slug=slug).first()


def memberships_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.select_related("office").filter(user_id=user.pk).order_by("office__name")


def office_ids_for_user(*, user: AbstractBaseUser) -> list[int]:
    return list(Membership.objects.filter(user_id=user.pk).values_list("office_id", flat=True))


def office_phone_numbers(*, office: Office) -> QuerySet[OfficePhoneNumber]:
    return OfficePhoneNumber.objects.filter(office=office).select_related("twilio_account")


def twilio_auth_token_for_account(*, account_sid: str) -> str | None:
    """The auth token of a per-office Twilio (sub)account, for webhook signature validation."""
    if not account_sid:
        return None
    from offices.models import TwilioAccount

    return TwilioAccount.objects.filter(account_sid=account_sid).values_list("auth_token", flat=True).first()


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
