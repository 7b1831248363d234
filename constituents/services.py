"""Writes of constituent data: matching by phone, and the consent log."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from common.rawsql import insert_params, insert_sql
from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from offices.models import Office


@dataclass(frozen=True, slots=True)
class LocationHints:
    """Where the carrier says a number is registered. Only fills blanks; never overwrites staff data."""

    city: str = ""
    state: str = ""
    zip_code: str = ""


@dataclass(frozen=True, slots=True)
class ConstituentRef:
    """What a webhook needs of the constituent behind a phone number, without loading the model."""

    id: int
    created: bool


def constituent_ref_for_phone(
    *,
    office_id: int,
    phone: str,
    hints: LocationHints | None = None,
    consent: SmsConsent = SmsConsent.IMPLIED,
) -> ConstituentRef:
    """Find the office's constituent with this E.164 phone, or create one. Safe under concurrent calls.

    One statement in the common case (webhooks call this on every text). Two webhooks from a new number
    can race: the partial unique index on (office, phone) makes one INSERT win, the other's ``DO NOTHING``
    returns no row, and it re-reads the winner's committed row with a fresh statement. Location hints only
    fill blanks, never overwrite staff data. ``consent``: a new constituent's SMS consent (``NONE`` for a
    caller: consent to texts comes only from a text).
    """
    if not phone:
        raise ValueError("constituent_ref_for_phone needs an E.164 phone; use constituent_create_anonymous")
    hints = hints or LocationHints()
    with connection.cursor() as cursor:
        cursor.execute(
            _upsert_sql(),
            [*insert_params(constituent_new(office_id, phone, hints, consent=consent)), office_id, phone],
        )
        row = cursor.fetchone()
        if row is None:  # lost the race for a new number: the winner has committed by now
            cursor.execute(_select_sql(), [office_id, phone])
            row = cursor.fetchone()
        if row is None:
            raise Constituent.DoesNotExist(f"constituent {phone} of office {office_id} vanished mid-insert")
    pk, created, *current = row
    if not created:
        constituent_hints_fill(constituent_id=pk, hints=hints, current=tuple(current))
    return ConstituentRef(id=pk, created=created)


def constituent_new(
    office_id: int, phone: str, hints: LocationHints, *, consent: SmsConsent = SmsConsent.IMPLIED
) -> Constituent:
    """An unsaved constituent for a first text or call from ``phone``, with the carrier's location hints."""
    return Constituent(**constituent_new_values(office_id, phone, hints), sms_consent=consent)


def constituent_new_values(office_id: int, phone: str, hints: LocationHints) -> dict[str, Any]:
    """The fields :func:`constituent_new` sets (the rest are the model's defaults)."""
    city, state, zip_code = _hint_values(hints)
    return {
        "office_id": office_id,
        "phone": phone,
        "carrier_city": city,
        "carrier_state": state,
        "carrier_zip": zip_code,
    }


def _hint_values(hints: LocationHints) -> tuple[str, str, str]:
    return hints.city[:100], hints.state[:2], hints.zip_code[:10]


# The carrier's idea of where a number is, kept as hints; in this order in the upsert statements.
HINT_FIELDS = ("carrier_city", "carrier_state", "carrier_zip")


def constituent_hints_fill(*, constituent_id: int, hints: LocationHints, current: tuple[str, ...]) -> None:
    """Fill the constituent's blank carrier fields (``current``, in HINT_FIELDS order) from ``hints``.

    A query only when there is a blank to fill; staff data and earlier hints are never overwritten.
    """
    fills = {
        field: value
        for field, value, have in zip(HINT_FIELDS, _hint_values(hints), current, strict=True)
        if value and not have
    }
    if fills:
        Constituent.objects.filter(pk=constituent_id).update(**fills, updated_at=timezone.now())


@cache
def _select_sql() -> str:
    columns = ", ".join(HINT_FIELDS)
    return (
        f"SELECT id, false, {columns} FROM {Constituent._meta.db_table} WHERE office_id = %s AND phone = %s"  # noqa: S608
    )


# A constituent is stored once per (office, phone): the conflict clause of the partial unique index
# "constituent_phone_unique_per_office", whose predicate it must repeat exactly; written once here and reused
# by every INSERT of a constituent by phone.
CONSTITUENT_PHONE_CONFLICT = "ON CONFLICT (office_id, phone) WHERE NOT (phone = '') DO NOTHING"


@cache
def _upsert_sql() -> str:
    insert = insert_sql(
        Constituent,
        conflict=CONSTITUENT_PHONE_CONFLICT,
        returning=f"id, true, {', '.join(HINT_FIELDS)}",
    )
    return f"WITH inserted AS ({insert}) SELECT * FROM inserted UNION ALL ({_select_sql()}) LIMIT 1"  # noqa: S608


@transaction.atomic
def constituent_for_phone(*, office: Office, phone: str, hints: LocationHints | None = None) -> Constituent:
    """Find the office's constituent with this E.164 phone, or create one; see constituent_ref_for_phone."""
    ref = constituent_ref_for_phone(office_id=office.pk, phone=phone, hints=hints)
    return Constituent.objects.get(pk=ref.id, office=office)


def constituent_create_anonymous(*, office_id: int, consent: SmsConsent = SmsConsent.IMPLIED) -> Constituent:
    """A constituent with no phone, e.g. a caller who withheld their number (``consent`` ``NONE``)."""
    return Constituent.objects.create(office_id=office_id, phone="", sms_consent=consent)


def consent_from_text(*, constituent_id: int, message_sid: str) -> bool:
    """A text from a constituent who had given no consent (known only from calls) implies it; logged.

    One statement when there is nothing to change (every text that takes the ordinary intake path). True if
    the consent changed.
    """
    with connection.cursor() as cursor:
        cursor.execute(_CONSENT_FROM_TEXT_SQL, [constituent_id])
        row = cursor.fetchone()
    if row is None:
        return False
    ConsentEvent.objects.create(
        office_id=row[0],
        constituent_id=constituent_id,
        previous=SmsConsent.NONE,
        new=SmsConsent.IMPLIED,
        source=ConsentSource.TEXTED_IN,
        message_sid=message_sid,
    )
    return True


_CONSENT_FROM_TEXT_SQL = (
    f"UPDATE {Constituent._meta.db_table} SET sms_consent = '{SmsConsent.IMPLIED.value}', "  # noqa: S608
    f"updated_at = now() WHERE id = %s AND sms_consent = '{SmsConsent.NONE.value}' RETURNING office_id"
)


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
