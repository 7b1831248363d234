"""The membership services: who may change an office's people, one membership per person and office, and
``is_staff`` kept in step with the admin role."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings

from offices.models import Membership, Role
from offices.services import (
    AlreadyMember,
    InvitationError,
    membership_add,
    membership_invite,
    membership_remove,
    membership_role_set,
)
from tests import factories

pytestmark = pytest.mark.django_db

BASE_URL = "https://civicdesk.test"


class RefusingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("the mail server refused the connection")


@pytest.fixture
def other() -> Any:
    return factories.OfficeFactory.create(slug="beta", name="Beta Office")


@pytest.fixture
def office_admin(office: Any) -> User:
    user: User = factories.MembershipFactory.create(
        office=office, role=Role.ADMIN, user__username="avery", user__is_staff=True
    ).user
    return user


@pytest.fixture
def person() -> User:
    user: User = factories.UserFactory.create(username="jamie", email="jamie@example.org")
    return user


def refreshed(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_adding_twice_is_already_a_member_from_the_unique_constraint(
    office: Any, office_admin: User, person: User
) -> None:
    membership_add(office=office, user=person, role=Role.STAFF, added_by=office_admin)
    with pytest.raises(AlreadyMember, match="jamie is already a member of this office"):
        membership_add(office=office, user=person, role=Role.ADMIN, added_by=office_admin)
    # The savepoint kept the transaction usable, and the first membership is untouched.
    assert list(Membership.objects.filter(user=person).values_list("office_id", "role")) == [
        (office.pk, Role.STAFF)
    ]
    assert not refreshed(person).is_staff


def test_only_an_admin_of_the_office_or_a_superuser_changes_its_people(
    office: Any, other: Any, office_admin: User, person: User
) -> None:
    staffer: User = factories.MembershipFactory.create(office=office, role=Role.STAFF).user
    with pytest.raises(PermissionDenied):
        membership_add(office=other, user=person, role=Role.STAFF, added_by=office_admin)
    with pytest.raises(PermissionDenied):
        membership_add(office=office, user=person, role=Role.STAFF, added_by=staffer)
    with pytest.raises(PermissionDenied):
        membership_invite(
            office=other, invited_by=office_admin, email="new@example.org", role=Role.STAFF, base_url=BASE_URL
        )
    assert not Membership.objects.filter(user=person).exists()
    assert not User.objects.filter(email="new@example.org").exists()
    assert mail.outbox == []
    root: User = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)
    assert membership_add(office=other, user=person, role=Role.STAFF, added_by=root).office_id == other.pk


def test_the_admin_role_gives_admin_access_and_losing_the_last_one_takes_it_away(
    office: Any, other: Any, office_admin: User, person: User
) -> None:
    root: User = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)
    first = membership_add(office=office, user=person, role=Role.STAFF, added_by=office_admin)
    assert not refreshed(person).is_staff
    membership_role_set(office=office, membership_id=first.pk, role=Role.ADMIN, changed_by=office_admin)
    assert refreshed(person).is_staff
    second = membership_add(office=other, user=person, role=Role.ADMIN, added_by=root)
    membership_role_set(office=office, membership_id=first.pk, role=Role.OFFICIAL, changed_by=office_admin)
    assert refreshed(person).is_staff  # still an admin of the other office
    assert membership_remove(office=other, membership_id=second.pk, removed_by=root)
    assert not refreshed(person).is_staff
    assert not membership_remove(office=other, membership_id=second.pk, removed_by=root)  # already gone


def test_adding_as_admin_gives_admin_access(office: Any, office_admin: User, person: User) -> None:
    membership = membership_add(office=office, user=person, role=Role.ADMIN, added_by=office_admin)
    assert refreshed(person).is_staff
    membership_remove(office=office, membership_id=membership.pk, removed_by=office_admin)
    assert not refreshed(person).is_staff


def test_a_superuser_keeps_admin_access_without_an_admin_membership(office: Any, office_admin: User) -> None:
    root: User = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)
    membership = membership_add(office=office, user=root, role=Role.ADMIN, added_by=office_admin)
    membership_role_set(office=office, membership_id=membership.pk, role=Role.STAFF, changed_by=office_admin)
    membership_remove(office=office, membership_id=membership.pk, removed_by=office_admin)
    assert refreshed(root).is_staff


def test_another_offices_membership_is_not_found_through_this_office(
    office: Any, other: Any, office_admin: User, person: User
) -> None:
    root: User = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)
    foreign = membership_add(office=other, user=person, role=Role.ADMIN, added_by=root)
    with pytest.raises(Membership.DoesNotExist):
        membership_role_set(office=office, membership_id=foreign.pk, role=Role.STAFF, changed_by=office_admin)
    assert not membership_remove(office=office, membership_id=foreign.pk, removed_by=office_admin)
    assert Membership.objects.get(pk=foreign.pk).role == Role.ADMIN
    assert refreshed(person).is_staff


def test_an_invitation_makes_the_account_the_membership_and_the_email(
    office: Any, office_admin: User
) -> None:
    invitation = membership_invite(
        office=office,
        invited_by=office_admin,
        email="Robin.Lee@Example.ORG",
        first_name="Robin",
        last_name="Lee",
        role=Role.ADMIN,
        base_url=BASE_URL,
    )
    user = refreshed(invitation.membership.user)
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "robin.lee@example.org",
        "Robin.Lee@example.org",
        "Robin",
        "Lee",
    )
    assert not user.has_usable_password()
    assert user.is_staff  # invited as an admin
    assert (invitation.account_created, invitation.email_sent) == (True, True)
    assert invitation.membership.office_id == office.pk
    [message] = mail.outbox
    assert message.to == ["Robin.Lee@example.org"]
    assert "Alpha Office" in message.subject
    assert f"{BASE_URL}/accounts/reset/" in message.body
    assert "robin.lee@example.org" in message.body


def test_an_email_that_cannot_be_sent_writes_nothing(office: Any, office_admin: User) -> None:
    with (
        override_settings(EMAIL_BACKEND=f"{__name__}.RefusingEmailBackend"),
        pytest.raises(InvitationError, match="could not be sent"),
    ):
        membership_invite(
            office=office,
            invited_by=office_admin,
            email="new@example.org",
            role=Role.ADMIN,
            base_url=BASE_URL,
        )
    assert not User.objects.filter(username="new@example.org").exists()
    assert Membership.objects.filter(office=office).count() == 1  # the admin's own


def test_inviting_an_address_with_an_account_adds_that_account(
    office: Any, office_admin: User, person: User
) -> None:
    invitation = membership_invite(
        office=office, invited_by=office_admin, email="JAMIE@example.org", role=Role.STAFF, base_url=BASE_URL
    )
    assert invitation.membership.user_id == person.pk
    assert (invitation.account_created, invitation.email_sent) == (False, False)  # they have a password
    assert User.objects.filter(email__iexact="jamie@example.org").count() == 1
    assert mail.outbox == []
    with pytest.raises(AlreadyMember):
        membership_invite(
            office=office,
            invited_by=office_admin,
            email="jamie@example.org",
            role=Role.STAFF,
            base_url=BASE_URL,
        )


def test_inviting_again_before_a_password_is_chosen_resends_the_link(office: Any, office_admin: User) -> None:
    first = membership_invite(
        office=office, invited_by=office_admin, email="new@example.org", role=Role.STAFF, base_url=BASE_URL
    )
    again = membership_invite(
        office=office, invited_by=office_admin, email="new@example.org", role=Role.ADMIN, base_url=BASE_URL
    )
    assert again.membership.pk == first.membership.pk
    assert again.membership.role == Role.STAFF  # a resend changes no role
    assert (again.account_created, again.email_sent) == (False, True)
    assert len(mail.outbox) == 2
    assert User.objects.filter(username="new@example.org").count() == 1


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("shared@example.org", "More than one account uses that email address"),
        ("o'brien+" + "x" * 150 + "@example.org", "No account can be made"),
    ],
)
def test_an_invitation_that_cannot_name_one_account_is_refused(
    office: Any, office_admin: User, email: str, error: str
) -> None:
    factories.UserFactory.create(username="pat1", email="shared@example.org")
    factories.UserFactory.create(username="pat2", email="SHARED@example.org")
    before = (User.objects.count(), Membership.objects.count())
    with pytest.raises(InvitationError, match=error):
        membership_invite(
            office=office, invited_by=office_admin, email=email, role=Role.STAFF, base_url=BASE_URL
        )
    assert (User.objects.count(), Membership.objects.count()) == before
    assert mail.outbox == []


def test_an_account_without_a_password_or_an_email_address_is_not_invited(
    office: Any, office_admin: User
) -> None:
    """The link goes only to the account's own address; an account named by the address as its username but
    with no email address gets none, and no membership."""
    nameless = User.objects.create_user(username="sam@example.org", password=None)
    with pytest.raises(InvitationError, match="has no email address"):
        membership_invite(
            office=office,
            invited_by=office_admin,
            email="sam@example.org",
            role=Role.STAFF,
            base_url=BASE_URL,
        )
    assert not Membership.objects.filter(user=nameless).exists()
    assert mail.outbox == []
