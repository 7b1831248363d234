"""An office admin invites someone who has no account, through the Membership add form, and the invited
person follows the emailed link, chooses a password, logs in and lands on the office. The admin's saves go
through the membership services: an admin membership gives admin access, and a duplicate added by another
admin at the same moment is a form error, never a 500."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test import Client

from offices.admin import MembershipAddForm
from offices.models import Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/offices/membership/add/"
LINK = re.compile(r"https://civicdesk\.test(/accounts/reset/[^/\s]+/[^/\s]+/)")
NEW_PASSWORD = "a-long-new-passphrase-7"


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
def admin_browser(office_admin: User) -> Client:
    client = Client()
    client.force_login(office_admin)
    return client


def invite(client: Client, office: Any, email: str = "robin@example.org", **extra: Any) -> Any:
    data = {
        "user_identifier": email,
        "invite": "on",
        "first_name": "Robin",
        "office": office.pk,
        "role": "staff",
    }
    return client.post(ADD_URL, {**data, **extra})


def emailed_link() -> str:
    [message] = mail.outbox
    match = LINK.search(str(message.body))
    assert match, message.body
    return match.group(1)


def test_the_add_form_offers_the_invitation(admin_browser: Client) -> None:
    html = admin_browser.get(ADD_URL).content.decode()
    for name in ("user_identifier", "invite", "first_name", "last_name"):
        assert f'name="{name}"' in html


def test_an_invited_person_sets_a_password_logs_in_and_lands_on_their_office(
    admin_browser: Client, office: Any
) -> None:
    response = invite(admin_browser, office)
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(username="robin@example.org")
    assert (user.email, user.first_name, user.has_usable_password()) == ("robin@example.org", "Robin", False)
    assert list(Membership.objects.filter(user=user).values_list("office_id", "role")) == [
        (office.pk, Role.STAFF)
    ]
    notice = admin_browser.get(response["Location"]).content.decode()
    assert "An invitation to choose a password was emailed to robin@example.org" in notice
    link = emailed_link()

    person = Client()
    opened = person.get(link)
    assert opened.status_code == 302  # Django moves the token out of the URL, into the session
    form_url = opened["Location"]
    page = person.get(form_url)
    assert page.status_code == 200
    assert "Choose your password" in page.content.decode()
    assert "robin@example.org" in page.content.decode()
    done = person.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == "/accounts/reset/done/"
    assert "Your password is set" in person.get(done["Location"]).content.decode()

    logged_in = person.post(
        "/accounts/login/", {"username": "robin@example.org", "password": NEW_PASSWORD}, follow=True
    )
    assert logged_in.redirect_chain[-1][0] == f"/o/{office.slug}/"
    assert logged_in.status_code == 200


def test_the_link_works_once(admin_browser: Client, office: Any) -> None:
    invite(admin_browser, office)
    link = emailed_link()
    person = Client()
    form_url = person.get(link)["Location"]
    person.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    password_hash = User.objects.get(username="robin@example.org").password

    for client in (person, Client()):
        reused = client.get(link, follow=True)
        assert reused.status_code == 200
        assert "This link no longer works" in reused.content.decode()
        refused = client.post(
            form_url, {"new_password1": "another-passphrase-9", "new_password2": "another-passphrase-9"}
        )
        assert "This link no longer works" in refused.content.decode()
    assert User.objects.get(username="robin@example.org").password == password_hash


def test_a_forged_office_id_is_rejected_and_nothing_is_written(
    admin_browser: Client, office: Any, other: Any
) -> None:
    before = (User.objects.count(), Membership.objects.count())
    response = invite(admin_browser, other, role="admin")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert (User.objects.count(), Membership.objects.count()) == before
    assert not Membership.objects.filter(office=other).exists()
    assert mail.outbox == []


def test_without_the_tick_an_unknown_address_is_an_error_not_an_account(
    admin_browser: Client, office: Any
) -> None:
    response = admin_browser.post(
        ADD_URL, {"user_identifier": "robin@example.org", "office": office.pk, "role": "staff"}
    )
    assert response.status_code == 200
    assert "No account has that username or email address" in response.content.decode()
    assert not User.objects.filter(username="robin@example.org").exists()
    response = invite(admin_browser, office, email="robin")
    assert "To invite someone new, give their email address" in response.content.decode()
    assert mail.outbox == []


def test_inviting_the_address_of_an_account_adds_that_account_or_says_it_is_a_member(
    admin_browser: Client, office: Any
) -> None:
    jamie: User = factories.UserFactory.create(username="jamie", email="Jamie@Example.org")
    assert invite(admin_browser, office, email="jamie@example.org").status_code == 302
    assert Membership.objects.get(user=jamie).office_id == office.pk
    assert mail.outbox == []  # they already have a password
    again = invite(admin_browser, office, email="jamie@example.org")
    assert again.status_code == 200
    assert "jamie is already a member of this office" in again.content.decode()
    assert User.objects.filter(email__iexact="jamie@example.org").count() == 1


def test_an_office_admin_membership_gives_admin_access_through_the_admin(
    admin_browser: Client, office: Any
) -> None:
    jamie: User = factories.UserFactory.create(username="jamie", email="jamie@example.org")
    response = admin_browser.post(ADD_URL, {"user_identifier": "jamie", "office": office.pk, "role": "admin"})
    assert response.status_code == 302
    jamie.refresh_from_db()
    assert jamie.is_staff
    membership = Membership.objects.get(user=jamie)
    change_url = f"/admin/offices/membership/{membership.pk}/change/"
    assert admin_browser.post(change_url, {"role": "staff"}).status_code == 302
    jamie.refresh_from_db()
    assert not jamie.is_staff
    admin_browser.post(change_url, {"role": "admin"})
    jamie.refresh_from_db()
    assert jamie.is_staff
    deleted = admin_browser.post(f"/admin/offices/membership/{membership.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    jamie.refresh_from_db()
    assert not jamie.is_staff
    assert not Membership.objects.filter(user=jamie).exists()


def test_the_bulk_delete_action_takes_admin_access_away(admin_browser: Client, office: Any) -> None:
    jamie: User = factories.UserFactory.create(username="jamie", is_staff=True)
    membership = Membership.objects.create(user=jamie, office=office, role=Role.ADMIN)
    response = admin_browser.post(
        "/admin/offices/membership/",
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )
    assert response.status_code == 302
    jamie.refresh_from_db()
    assert not jamie.is_staff


def test_a_membership_cannot_be_moved_to_another_office(
    admin_browser: Client, office_admin: User, office: Any
) -> None:
    third: Any = factories.OfficeFactory.create(slug="gamma", name="Gamma Office")
    Membership.objects.create(user=office_admin, office=third, role=Role.ADMIN)
    jamie: User = factories.UserFactory.create(username="jamie")
    membership = Membership.objects.create(user=jamie, office=office, role=Role.STAFF)
    Membership.objects.create(user=jamie, office=third, role=Role.STAFF)
    url = f"/admin/offices/membership/{membership.pk}/change/"
    response = admin_browser.post(url, {"office": third.pk, "role": "official"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.office_id, membership.role) == (office.pk, Role.OFFICIAL)


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_committed_by_another_admin_after_validation_is_a_form_error(
    office: Any, office_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another admin's request, on its own database connection, adds the same person between this form's
    validation and its save: the unique constraint refuses the second row, and the form says why."""
    jamie: User = factories.UserFactory.create(username="jamie")
    original_clean = MembershipAddForm.clean
    raced: list[bool] = []

    def other_admin_adds_jamie() -> None:
        try:
            Membership.objects.create(user=jamie, office=office, role=Role.OFFICIAL)
        finally:
            connection.close()  # this thread's own connection

    def clean_then_race(form: MembershipAddForm) -> dict[str, Any]:
        cleaned = original_clean(form)
        if not raced:
            raced.append(True)
            thread = threading.Thread(target=other_admin_adds_jamie)
            thread.start()
            thread.join()
        return cleaned

    monkeypatch.setattr(MembershipAddForm, "clean", clean_then_race)
    client = Client()
    client.force_login(office_admin)
    response = client.post(ADD_URL, {"user_identifier": "jamie", "office": office.pk, "role": "admin"})
    assert raced == [True]
    assert response.status_code == 200
    assert "jamie is already a member of this office" in response.content.decode()
    assert list(Membership.objects.filter(user=jamie).values_list("role", flat=True)) == [Role.OFFICIAL]
    jamie.refresh_from_db()
    assert not jamie.is_staff  # the refused admin membership gave nothing


def test_a_duplicate_inserted_after_validation_is_a_form_error_for_a_superuser_too(
    office: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The superuser's form (with the user picker) saves through the same service."""
    root: User = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)
    jamie: User = factories.UserFactory.create(username="jamie")
    from offices import admin as offices_admin

    original_add = offices_admin.membership_add  # type: ignore[attr-defined]  # the name the admin calls, patched below
    calls: list[int] = []

    def add_after_a_rival(**kwargs: Any) -> Membership:
        if not calls:
            calls.append(1)
            Membership.objects.create(user=jamie, office=office, role=Role.OFFICIAL)  # the rival's row
        return original_add(**kwargs)

    monkeypatch.setattr(offices_admin, "membership_add", add_after_a_rival)
    client = Client()
    client.force_login(root)
    response = client.post(ADD_URL, {"user": jamie.pk, "office": office.pk, "role": "admin"})
    assert response.status_code == 200
    assert "jamie is already a member of this office" in response.content.decode()
