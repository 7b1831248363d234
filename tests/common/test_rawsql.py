"""common.rawsql: hand-written INSERTs prepare values exactly as the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from common.rawsql import insert_fields, insert_params, insert_select_sql, insert_values
from constituents.models import Constituent
from messages.models import Message

pytestmark = pytest.mark.django_db


def test_values_match_the_orms_own_preparation() -> None:
    values = {
        "office_id": 7,
        "conversation_id": 9,
        "direction": "inbound",
        "body": "Hello ✓",
        "from_number": "+14155550123",
        "duration_seconds": 12,
        "created_at": datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        "details": {"opt_out_type": ""},
    }
    prepared = insert_values(Message, prefix="m", **values)
    fields = {f.attname: f for f in Message._meta.concrete_fields}
    for name, value in values.items():
        expected = fields[name].get_db_prep_save(value, connection)
        got = prepared[f"m_{name}"]
        assert type(got) is type(expected), name
        if name != "details":  # the JSON adapter has no equality; its type is checked above
            assert got == expected, name


def test_instance_params_match_the_orms_own_preparation() -> None:
    message = Message(
        office_id=7,
        conversation_id=9,
        direction="inbound",
        channel="sms",
        body="Hi",
        status="received",
        duration_seconds=3,
        details={"a": 1},
        created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )
    params = insert_params(message)
    for field, got in zip(insert_fields(Message), params, strict=True):
        expected = field.get_db_prep_save(field.pre_save(message, add=True), connection)
        assert type(got) is type(expected), field.attname
        if field.attname != "details":
            assert got == expected, field.attname


def test_fields_not_given_are_their_defaults_and_callable_defaults_must_be_given() -> None:
    sql = insert_select_sql(
        Constituent, prefix="c", given=("office_id", "phone", "carrier_city", "carrier_state", "carrier_zip")
    )
    assert "%(c_phone)s" in sql
    assert "'en'" in sql  # preferred_language's default, as a literal
    assert "now()" in sql  # created_at / updated_at (auto_now_add / auto_now)
    with pytest.raises(ValueError, match="callable default"):
        insert_select_sql(Message, prefix="m", given=("office_id",))  # created_at defaults to timezone.now
