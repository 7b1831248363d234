"""The correspondence API: letters with versions and approval; bulk replies previewed, started, controlled."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from correspondence.models import BulkRecipient, BulkReply, CorrespondenceSettings, FormLetterVersion
from tests import factories
from tests.correspondence.world import World, world_build

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(world: World, path: str = "") -> str:
    return f"/api/v1/offices/{world.office.slug}/{path}"


def test_a_letter_is_created_as_a_draft_and_a_bad_template_is_refused_with_its_position(world: World) -> None:
    staff = client_for(world.staff)
    made = staff.post(
        api(world, "letters/"), {"name": "Roads", "body": "Hi {first_name}"}, content_type="application/json"
    )
    assert made.status_code == 201
    assert made.json()["status"] == "draft"
    assert made.json()["latest_version"] == {"number": 1, "status": "draft", "body": "Hi {first_name}"}

    for body, expected in [
        ("Hi {__class__}", "Unknown field {__class__} at line 1, column 4"),
        ("Hi {first_name.__class__}", "line 1, column 4"),
        ("Hi {first_name", "line 1, column 4"),
        ("{first_name}" * 1000, "1600"),
    ]:
        refused = staff.post(
            api(world, "letters/"), {"name": "Bad", "body": body}, content_type="application/json"
        )
        assert refused.status_code == 400, body[:40]
        assert expected in refused.json()["body"][0]


def test_editing_an_approved_letter_makes_a_draft_and_the_approved_version_keeps_sending(
    world: World,
) -> None:
    staff = client_for(world.staff)
    changed = staff.patch(
        api(world, f"letters/{world.letter.pk}/"),
        {"body": "New text, {first_name}."},
        content_type="application/json",
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["latest_version"]["number"] == 2
    assert body["latest_version"]["status"] == "draft"
    assert body["approved_version"]["number"] == 1
    assert body["status"] == "approved"

    refused = staff.post(
        api(world, f"letters/{world.letter.pk}/approve/"), {}, content_type="application/json"
    )
    assert refused.status_code == 403  # staff without the right cannot approve

    admin = client_for(world.admin.user)
    approved = admin.post(
        api(world, f"letters/{world.letter.pk}/approve/"), {"version": 2}, content_type="application/json"
    )
    assert approved.status_code == 200
    assert approved.json()["approved_version"]["number"] == 2
    statuses = dict(FormLetterVersion.objects.filter(letter=world.letter).values_list("number", "status"))
    assert statuses == {1: "superseded", 2: "approved"}


def test_a_staffer_given_the_right_may_approve(world: World) -> None:
    approver = factories.MembershipFactory.create(office=world.office, role="staff", can_approve_letters=True)
    client_for(world.staff).patch(
        api(world, f"letters/{world.letter.pk}/"), {"body": "Second."}, content_type="application/json"
    )
    approved = client_for(approver.user).post(
        api(world, f"letters/{world.letter.pk}/approve/"), {}, content_type="application/json"
    )
    assert approved.status_code == 200
    assert approved.json()["approved_version"]["number"] == 2


def test_preview_answers_the_count_and_the_exclusions_by_reason_and_creates_no_recipient(
    world: World,
) -> None:
    world.texter(first="Ann")
    world.texter(first="Bo")
    out = world.texter(first="Cy")
    out.constituent.sms_consent = "opted_out"
    out.constituent.save()
    caller = factories.ConversationFactory.create(constituent__office=world.office)  # never wrote to us
    answer = client_for(world.staff).post(
        api(world, "bulk-replies/"),
        {"audience": {"conversations": [*world.ids(), caller.pk]}, "letter": world.letter.pk, "start": False},
        content_type="application/json",
    )
    assert answer.status_code == 201
    body = answer.json()
    assert (body["status"], body["recipient_count"]) == ("draft", 2)
    assert body["exclusions"] == {"opted_out": 1, "not_contacted": 1}
    assert not BulkRecipient.objects.exists()


def test_another_offices_ids_anywhere_are_a_404_and_nothing_is_created(world: World) -> None:
    other = world_build(slug="beta")
    theirs = other.texter()
    mine = world.texter()
    staff = client_for(world.staff)
    for payload in [
        {"audience": {"conversations": [mine.pk, theirs.pk]}, "letter": world.letter.pk},
        {"audience": {"conversations": [mine.pk]}, "letter": other.letter.pk},
        {"audience": {"tag": factories.TagFactory.create(office=other.office).pk}, "letter": world.letter.pk},
    ]:
        assert (
            staff.post(
                api(world, "bulk-replies/"), {**payload, "start": True}, content_type="application/json"
            ).status_code
            == 404
        )
    assert not BulkReply.objects.exists()
    created = staff.post(
        api(world, "bulk-replies/"),
        {"audience": {"conversations": [mine.pk]}, "letter": world.letter.pk},
        content_type="application/json",
    ).json()
    other_staff = client_for(other.staff)
    assert other_staff.get(api(other, f"bulk-replies/{created['id']}/")).status_code == 404
    assert other_staff.post(api(other, f"bulk-replies/{created['id']}/cancel/")).status_code == 404
    assert other_staff.get(api(other, f"letters/{world.letter.pk}/")).status_code == 404
    assert client_for(other.staff).get(api(world, "letters/")).status_code == 404  # not a member


def test_an_official_reads_but_every_write_is_403(world: World) -> None:
    official = client_for(factories.MembershipFactory.create(office=world.office, role="official").user)
    conversation = world.texter()
    assert official.get(api(world, "letters/")).status_code == 200
    writes = [
        official.post(api(world, "letters/"), {"name": "x", "body": "y"}, content_type="application/json"),
        official.patch(
            api(world, f"letters/{world.letter.pk}/"), {"body": "y"}, content_type="application/json"
        ),
        official.post(api(world, f"letters/{world.letter.pk}/approve/")),
        official.post(
            api(world, "bulk-replies/"),
            {"audience": {"conversations": [conversation.pk]}, "letter": world.letter.pk},
            content_type="application/json",
        ),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403, 403]
    assert not BulkReply.objects.exists()


def test_a_one_off_body_needs_the_office_setting_off(world: World) -> None:
    conversation = world.texter()
    staff = client_for(world.staff)
    payload = {"audience": {"conversations": [conversation.pk]}, "body": "Thanks {first_name|friend}!"}
    refused = staff.post(api(world, "bulk-replies/"), payload, content_type="application/json")
    assert refused.status_code == 400
    assert "approved form letter" in refused.json()["letter"][0]
    CorrespondenceSettings.objects.create(office=world.office, require_approved_letter=False)
    assert (
        staff.post(api(world, "bulk-replies/"), payload, content_type="application/json").status_code == 201
    )


def test_status_counts_and_pause_resume_cancel(world: World, private_cache: Any) -> None:
    world.texter()
    world.texter()
    staff = client_for(world.staff)
    created = staff.post(
        api(world, "bulk-replies/"),
        {"audience": {"conversations": world.ids()}, "letter": world.letter.pk, "start": True},
        content_type="application/json",
    ).json()
    assert created["status"] == "sending"
    from correspondence.services.bulk import bulk_reply_prepare

    bulk_reply_prepare(bulk_reply_id=created["id"])
    status = staff.get(api(world, f"bulk-replies/{created['id']}/")).json()
    assert status["counts"]["queued"] + status["counts"]["deferred"] == 2
    assert staff.post(api(world, f"bulk-replies/{created['id']}/pause/")).json()["status"] == "paused"
    assert staff.post(api(world, f"bulk-replies/{created['id']}/pause/")).status_code == 409
    assert staff.post(api(world, f"bulk-replies/{created['id']}/resume/")).json()["status"] == "sending"
    assert staff.post(api(world, f"bulk-replies/{created['id']}/cancel/")).json()["status"] == "cancelled"
    status = staff.get(api(world, f"bulk-replies/{created['id']}/")).json()
    assert status["counts"]["cancelled"] == 2


def test_bad_audiences_are_400_with_the_reason(world: World) -> None:
    staff = client_for(world.staff)
    for audience in [
        {},
        {"conversations": []},
        {"conversations": ["1"]},
        {"tag": True},
        {"everyone": 1},
        [1, 2],
    ]:
        answer = staff.post(
            api(world, "bulk-replies/"),
            {"audience": audience, "letter": world.letter.pk},
            content_type="application/json",
        )
        assert answer.status_code == 400, audience
        assert answer.json()["audience"]
