"""One rule, one answer: a foreign tag and an ineligible assignee are treated alike by every triage path."""

from __future__ import annotations

from typing import Any

import pytest

from messages.services import bulk, triage
from messages.services.rules import ForeignObjectNotFound
from offices.models import Role
from offices.selectors import is_assignable
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_foreign_tag_is_not_found_one_at_a_time_and_in_bulk(office: Any) -> None:
    conversation: Any = factories.ConversationFactory.create(office=office)
    foreign_tag: Any = factories.TagFactory.create(office=factories.OfficeFactory.create())

    with pytest.raises(ForeignObjectNotFound) as single:
        triage.conversation_tag(conversation=conversation, tag=foreign_tag, actor=None)
    with pytest.raises(ForeignObjectNotFound) as many:
        bulk.bulk_tag(
            office=office, actor=None, selection=bulk.Selection(ids=[conversation.pk]), tag=foreign_tag
        )
    assert str(single.value) == str(many.value) == "No such tag."
    assert isinstance(many.value, bulk.BulkSelectionNotFound)  # the bulk view's 404
    assert not conversation.tags.exists()


@pytest.mark.parametrize(
    ("role", "eligible"), [(Role.ADMIN, True), (Role.STAFF, True), (Role.OFFICIAL, False)]
)
def test_who_may_be_assigned_is_decided_once(office: Any, role: str, eligible: bool) -> None:
    member: Any = factories.MembershipFactory.create(office=office, role=role)
    conversation: Any = factories.ConversationFactory.create(office=office)

    assert is_assignable(office_id=office.pk, user=member.user) is eligible
    assert member.is_assignable is eligible
    if eligible:
        assert triage.conversation_assign(conversation=conversation, assignee=member.user, actor=None)
    else:
        with pytest.raises(triage.TriageRejected, match="admins or staff"):
            triage.conversation_assign(conversation=conversation, assignee=member.user, actor=None)
        with pytest.raises(bulk.BulkRejected, match="admins or staff"):
            bulk.bulk_assign(
                office=office,
                actor=None,
                selection=bulk.Selection(ids=[conversation.pk]),
                assignee=member.user,
            )


def test_a_member_of_another_office_is_never_assignable(office: Any) -> None:
    elsewhere: Any = factories.MembershipFactory.create(role=Role.STAFF)
    assert not is_assignable(office_id=office.pk, user=elsewhere.user)
