"""Scheduling a bulk reply, and its report: a page and a CSV that a spreadsheet cannot run."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, cast

import pytest
from django.test import Client
from django.utils import timezone

from correspondence.models import BulkStatus
from correspondence.services import bulk, sending
from correspondence.views import csv_safe
from tests.correspondence.world import World

pytestmark = pytest.mark.django_db


def test_a_scheduled_bulk_reply_waits_for_its_time(world: World, private_cache: Any) -> None:
    world.texter()
    later = timezone.now() + timedelta(hours=2)
    scheduled = bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        send_at=later,
        start=True,
    )
    assert scheduled.status == BulkStatus.SCHEDULED
    assert sending.due_scheduled_start(now=timezone.now()) == []
    assert sending.due_scheduled_start(now=later + timedelta(seconds=1)) == [scheduled.pk]
    scheduled.refresh_from_db()
    assert scheduled.status == BulkStatus.SENDING


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+14155550100", "'+14155550100"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Maria", "Maria"),
        ("", ""),
    ],
)
def test_csv_cells_are_formula_safe_and_phone_numbers_stay_readable(value: str, cell: str) -> None:
    assert csv_safe(value) == cell


def test_the_report_csv_lists_every_recipient_with_its_state(world: World, private_cache: Any) -> None:
    world.texter(first="=cmd|' /C calc'!A0")
    world.texter(first="Out", sms_consent="opted_out")
    created = bulk.bulk_reply_create(
        office=world.office,
        actor=world.staff,
        audience=bulk.Audience(conversations=tuple(world.ids())),
        letter_id=world.letter.pk,
        start=True,
    )
    bulk.bulk_reply_prepare(bulk_reply_id=created.pk)
    client = Client()
    client.force_login(world.staff)
    response = client.get(f"/o/{world.office.slug}/bulk-replies/{created.pk}/report.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(cast(Iterable[bytes], response.streaming_content))  # type: ignore[attr-defined]  # the test client's response type has no streaming_content
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert len(rows) == 2
    by_state = {row["state"]: row for row in rows}
    assert by_state["skipped"]["reason"] == "Opted out of texts"
    assert by_state["queued"]["name"].startswith("'=cmd")
    assert all(row["phone"].startswith("'+1") for row in rows)
    assert client.get(f"/o/{world.office.slug}/bulk-replies/{created.pk}/report/").status_code == 200
