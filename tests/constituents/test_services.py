"""The constituent services: the consent log, the consent a text implies, matching by phone in a race."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction

from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from constituents.services import (
    ConstituentRef,
    LocationHints,
    consent_from_text,
    consent_set,
    constituent_for_phone,
    constituent_ref_for_phone,
)
from tests import factories

PHONE = "+14155550142"
WAIT_SECONDS = 10.0


@pytest.fixture
def constituent(db: None) -> Constituent:
    return factories.ConstituentFactory.create(phone=PHONE, sms_consent=SmsConsent.IMPLIED)


# --- consent_set -------------------------------------------------------------------------------------


def test_a_consent_change_is_logged_with_everything_that_caused_it_and_returns_true(constituent):
    staff = factories.UserFactory.create()
    changed = consent_set(
        constituent=constituent,
        consent=SmsConsent.OPTED_OUT,
        source=ConsentSource.KEYWORD,
        keyword="S" * 40,
        message_sid="SM" + "1" * 32,
        changed_by=staff,
        note="n" * 400,
    )
    assert changed is True
    event = ConsentEvent.objects.get()
    assert (event.office_id, event.constituent_id) == (constituent.office_id, constituent.pk)
    assert (event.previous, event.new, event.source) == (
        SmsConsent.IMPLIED,
        SmsConsent.OPTED_OUT,
        ConsentSource.KEYWORD,
    )
    assert event.keyword == "S" * 32  # cut to the column, never refused
    assert event.message_sid == "SM" + "1" * 32
    assert event.changed_by_id == staff.pk
    assert event.note == "n" * 300
    assert constituent.sms_consent == SmsConsent.OPTED_OUT  # the caller's object ...
    assert Constituent.objects.get(pk=constituent.pk).sms_consent == SmsConsent.OPTED_OUT  # ... and the row


def test_a_consent_change_without_a_cause_logs_empty_fields_and_no_staff(constituent):
    assert consent_set(constituent=constituent, consent=SmsConsent.OPTED_OUT, source=ConsentSource.STAFF)
    event = ConsentEvent.objects.get()
    assert (event.keyword, event.message_sid, event.note, event.changed_by_id) == ("", "", "", None)


def test_setting_the_consent_the_row_already_has_logs_nothing_returns_false_and_refreshes_the_caller(
    constituent,
):
    Constituent.objects.filter(pk=constituent.pk).update(sms_consent=SmsConsent.OPTED_OUT)
    assert constituent.sms_consent == SmsConsent.IMPLIED  # the caller's copy is stale
    changed = consent_set(constituent=constituent, consent=SmsConsent.OPTED_OUT, source=ConsentSource.KEYWORD)
    assert changed is False
    assert not ConsentEvent.objects.exists()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT  # read under the lock, not assumed


def test_consent_set_reads_the_constituent_in_the_office_it_names(constituent):
    other_office = factories.OfficeFactory.create()
    forged = Constituent.objects.get(pk=constituent.pk)
    forged.office_id = other_office.pk
    with pytest.raises(Constituent.DoesNotExist):
        consent_set(constituent=forged, consent=SmsConsent.OPTED_OUT, source=ConsentSource.STAFF)
    assert Constituent.objects.get(pk=constituent.pk).sms_consent == SmsConsent.IMPLIED
    assert not ConsentEvent.objects.exists()


# --- consent_from_text -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_text_from_a_caller_with_no_consent_implies_it_once_and_says_so():
    caller = factories.ConstituentFactory.create(phone=PHONE, sms_consent=SmsConsent.NONE)
    assert consent_from_text(constituent_id=caller.pk, message_sid="SM" + "2" * 32) is True
    assert consent_from_text(constituent_id=caller.pk, message_sid="SM" + "3" * 32) is False
    [event] = ConsentEvent.objects.all()
    assert (event.previous, event.new, event.source) == (
        SmsConsent.NONE,
        SmsConsent.IMPLIED,
        ConsentSource.TEXTED_IN,
    )


# --- matching by phone -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_carrier_hints_longer_than_their_columns_are_cut_to_fit_and_fill_only_blanks():
    office = factories.OfficeFactory.create()
    long_hints = LocationHints(city="C" * 150, state="CAX", zip_code="9" * 15)
    ref = constituent_ref_for_phone(office_id=office.pk, phone=PHONE, hints=long_hints)
    stored = Constituent.objects.get(pk=ref.id)
    assert (stored.carrier_city, stored.carrier_state, stored.carrier_zip) == ("C" * 100, "CA", "9" * 10)

    Constituent.objects.filter(pk=ref.id).update(carrier_zip="")
    before = Constituent.objects.get(pk=ref.id).updated_at
    constituent_ref_for_phone(
        office_id=office.pk, phone=PHONE, hints=LocationHints(city="Other", state="NY", zip_code="9" * 12)
    )
    filled = Constituent.objects.get(pk=ref.id)
    assert (filled.carrier_city, filled.carrier_state, filled.carrier_zip) == ("C" * 100, "CA", "9" * 10)
    assert filled.updated_at > before


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_the_loser_of_a_race_for_a_new_number_gets_the_winners_row_once_it_commits():
    """Two first texts from one number: the second INSERT waits on the unique index, finds the first's row
    when it commits, and reads it with a fresh statement (its own statement's snapshot predates it)."""
    office = factories.OfficeFactory.create()
    inserted, commit = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def winner() -> None:
        try:
            with transaction.atomic():
                results["winner"] = constituent_ref_for_phone(office_id=office.pk, phone=PHONE)
                inserted.set()
                commit.wait(WAIT_SECONDS)
        finally:
            connections.close_all()

    def loser() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                row = cursor.fetchone()
                assert row is not None
                results["loser_pid"] = row[0]
            try:
                results["loser"] = constituent_ref_for_phone(office_id=office.pk, phone=PHONE)
            except Exception as error:  # the test reports what the loser got
                results["loser"] = error
        finally:
            connections.close_all()

    first = threading.Thread(target=winner)
    first.start()
    assert inserted.wait(WAIT_SECONDS)
    second = threading.Thread(target=loser)
    second.start()
    deadline = threading.Event()
    for _ in range(int(WAIT_SECONDS / 0.02)):
        if "loser_pid" in results and _waiting_for_a_lock(results["loser_pid"]):
            break
        deadline.wait(0.02)
    else:
        pytest.fail("the second insert never waited on the first")
    commit.set()
    first.join(WAIT_SECONDS)
    second.join(WAIT_SECONDS)

    assert results["winner"] == ConstituentRef(id=results["winner"].id, created=True)
    assert results["loser"] == ConstituentRef(id=results["winner"].id, created=False)
    assert Constituent.objects.filter(office=office, phone=PHONE).count() == 1


@pytest.mark.django_db
def test_constituent_for_phone_returns_the_offices_constituent_made_once():
    office = factories.OfficeFactory.create()
    factories.ConstituentFactory.create(phone=PHONE)  # the same number in another office
    factories.ConstituentFactory.create(office=office, phone="+14155550199")  # another of this office
    first = constituent_for_phone(office=office, phone=PHONE, hints=LocationHints(city="Oakland"))
    again = constituent_for_phone(office=office, phone=PHONE)
    assert isinstance(first, Constituent)
    assert (first.office_id, first.phone, first.carrier_city) == (office.pk, PHONE, "Oakland")
    assert again.pk == first.pk


@pytest.mark.django_db
def test_matching_by_phone_needs_a_phone_and_names_the_way_for_a_caller_without_one():
    office = factories.OfficeFactory.create()
    with pytest.raises(ValueError, match=r"needs an E\.164 phone; use constituent_create_anonymous$"):
        constituent_ref_for_phone(office_id=office.pk, phone="")
