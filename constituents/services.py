"""Writes of constituent data: matching by phone, and the consent log."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from offices.models import Office


@dataclass(frozen=True, slots=True)
class LocationHints:
    """Where the carrier says a number is registered. Only fills blanks; never overwrites staff data."""

    city: str = ""
    state: str = ""
    zip_code: str = ""


@transaction.atomic
def constituent_for_phone(*, office: Office, phone: str, hints: LocationHints | None = None) -> Constituent:
    """Find the office's constituent with this E.164 phone, or create one. Safe under concurrent calls.

    Two webhooks from a new number can race; the partial unique constraint on (office, phone) makes one
    insert win, and ``get_or_create`` re-reads the winner's row inside a savepoint.
    """
    if not phone:
        raise ValueError("constituent_for_phone needs an E.164 phone; use constituent_create_anonymous")
    constituent, _created = Constituent.objects.get_or_create(office=office, phone=phone)
    if hints is not None:
        changed = []
        for field, value in (
            ("carrier_city", hints.city[:100]),
            ("carrier_state", hints.state[:2]),
            ("carrier_zip", hints.zip_code[:10]),
        ):
            if value and not getattr(constituent, field):
                setattr(constituent, field, value)
                changed.append(field)
        if changed:
            constituent.save(update_fields=[*changed, "updated_at"])
    return constituent


def constituent_create_anonymous(*, office: Office) -> Constituent:
    """A constituent with no phone, e.g. a caller who withheld their number."""
    return Constituent.objects.create(office=office, phone="")


@transaction.atomic
def consent_set(
    *,
    constituent: Constituent,
    consent: SmsConsent,
    source: ConsentSource,
    keyword: str = "",
    message_sid: str = "",
    changed_by: AbstractBaseUser | None = None,
    note: str = "",
) -> bool:
    """Change SMS consent under a row lock and log the change. Returns False if nothing changed."""
    locked = Constituent.objects.select_for_update().get(pk=constituent.pk, office_id=constituent.office_id)
    if locked.sms_consent == consent:
        constituent.sms_consent = locked.sms_consent
        return False
    ConsentEvent.objects.create(
        office_id=locked.office_id,
        constituent=locked,
        previous=locked.sms_consent,
        new=consent,
        source=source,
        keyword=keyword[:32],
        message_sid=message_sid,
        changed_by_id=changed_by.pk if changed_by is not None else None,
        note=note[:300],
    )
    locked.sms_consent = consent
    locked.save(update_fields=["sms_consent", "updated_at"])
    constituent.sms_consent = consent
    return True
