"""The data migration that takes back the "implied" consent stored for constituents who only ever called."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from messages.models import Channel, Direction
from tests import factories

pytestmark = pytest.mark.django_db

migration = importlib.import_module("constituents.migrations.0004_callers_give_no_sms_consent")


def _with(office: Any, phone: str, *messages: tuple[str, str], consent: str = SmsConsent.IMPLIED) -> Any:
    constituent: Any = factories.ConstituentFactory.create(office=office, phone=phone, sms_consent=consent)
    conversation: Any = factories.ConversationFactory.create(constituent=constituent)
    for direction, channel in messages:
        factories.MessageFactory.create(
            conversation=conversation, direction=direction, channel=channel, body=""
        )
    return constituent


def test_callers_lose_the_consent_they_never_gave_and_the_change_is_logged() -> None:
    office: Any = factories.OfficeFactory.create()
    call, voicemail = (Direction.INBOUND, Channel.CALL), (Direction.INBOUND, Channel.VOICEMAIL)
    text, picture = (Direction.INBOUND, Channel.SMS), (Direction.INBOUND, Channel.MMS)
    reply = (Direction.OUTBOUND, Channel.SMS)
    caller = _with(office, "+14155550001", call, voicemail)
    answered_by_text = _with(office, "+14155550002", call, reply)  # our reply is no consent of theirs
    texter = _with(office, "+14155550003", call, text)
    picture_sender = _with(office, "+14155550004", picture)
    opted_out = _with(office, "+14155550005", call, consent=SmsConsent.OPTED_OUT)
    no_messages = _with(office, "+14155550006")

    migration.callers_give_no_sms_consent(apps, connection.schema_editor())

    consent = dict(Constituent.objects.values_list("pk", "sms_consent"))
    assert consent == {
        caller.pk: SmsConsent.NONE,
        answered_by_text.pk: SmsConsent.NONE,
        texter.pk: SmsConsent.IMPLIED,
        picture_sender.pk: SmsConsent.IMPLIED,
        opted_out.pk: SmsConsent.OPTED_OUT,
        no_messages.pk: SmsConsent.IMPLIED,
    }
    events = ConsentEvent.objects.order_by("constituent_id")
    assert [(e.constituent_id, e.office_id, e.previous, e.new, e.source) for e in events] == [
        (caller.pk, office.pk, SmsConsent.IMPLIED, SmsConsent.NONE, ConsentSource.CORRECTED),
        (answered_by_text.pk, office.pk, SmsConsent.IMPLIED, SmsConsent.NONE, ConsentSource.CORRECTED),
    ]

    # Running it again changes nothing; backwards, everyone is "implied" again and the corrections go.
    migration.callers_give_no_sms_consent(apps, connection.schema_editor())
    assert ConsentEvent.objects.count() == 2
    migration.callers_back_to_implied(apps, connection.schema_editor())
    assert not Constituent.objects.filter(sms_consent=SmsConsent.NONE).exists()
    assert not ConsentEvent.objects.exists()


def test_the_migration_runs_after_the_messages_tables_exist() -> None:
    assert ("civicdesk_messages", "0009_parked_voice_callback_signed_for_office") in (
        migration.Migration.dependencies
    )


def test_an_existing_database_migrates_forward_with_its_callers_corrected() -> None:
    from django.db.migrations.executor import MigrationExecutor

    office: Any = factories.OfficeFactory.create()
    caller = _with(office, "+14155550001", (Direction.INBOUND, Channel.CALL))
    texter = _with(office, "+14155550003", (Direction.INBOUND, Channel.SMS))
    before = ("constituents", "0003_sms_consent_none")
    after = ("constituents", "0004_callers_give_no_sms_consent")

    executor = MigrationExecutor(connection)
    executor.migrate([before])  # the database as it was before this migration
    caller.refresh_from_db()
    assert caller.sms_consent == SmsConsent.IMPLIED
    executor = MigrationExecutor(connection)
    executor.migrate([after])

    assert dict(Constituent.objects.values_list("pk", "sms_consent")) == {
        caller.pk: SmsConsent.NONE,
        texter.pk: SmsConsent.IMPLIED,
    }
    assert ConsentEvent.objects.get().constituent_id == caller.pk
