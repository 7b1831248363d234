"""An office admin adds people to their own office in the Django admin, and only to it.

They name an existing account exactly (username or email address): they never browse the platform's users,
and they never see or change another office's memberships.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from offices.models import Membership, Role
from tests import factories

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/offices/membership/add/"


@pytest.fixture
def own(office: Any) -> Any:
    return office


@pytest.fixture
def other() -> Any:
    return factories.OfficeFactory.create(slug="beta", name="Beta Office SECRET-OFFICE")


@pytest.fixture
def office_admin(own: Any) -> Any:
    return factories.MembershipFactory.create(
        office=own, role=Role.ADMIN, user__username="avery", user__is_staff=True
    ).user


@pytest.fixture
def admin_browser(office_admin: Any) -> Client:
    client = Client()
    client.force_login(office_admin)
    return client


@pytest.fixture
def newcomer() -> Any:
    return factories.UserFactory.create(username="jamie", email="Jamie@Example.org")


@pytest.fixture
def stranger(other: Any) -> Any:
    """A member of the other office only, whose name must never reach the office admin's pages."""
    return factories.MembershipFactory.create(
        office=other, role=Role.STAFF, user__username="SECRET-USER", user__email="secret@example.org"
    )


def test_the_add_form_loads_with_no_user_picker_and_no_office_choice(admin_browser: Client, own: Any) -> None:
    page = admin_browser.get(ADD_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="user_identifier"' in html
    assert "admin-autocomplete" not in html  # no browsable list of the platform's users
    assert f'<input type="hidden" name="office" value="{own.pk}"' in html


@pytest.mark.parametrize("identifier", ["jamie", "jamie@example.org", " JAMIE@EXAMPLE.ORG "])
def test_an_office_admin_adds_an_existing_user_by_exact_username_or_email(
    admin_browser: Client, own: Any, newcomer: Any, identifier: str
) -> None:
    response = admin_browser.post(
        ADD_URL, {"user_identifier": identifier, "office": own.pk, "role": Role.STAFF}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    membership = Membership.objects.get(user=newcomer)
    assert (membership.office_id, membership.role) == (own.pk, Role.STAFF)


def test_a_forged_office_id_is_rejected_and_nothing_is_written(
    admin_browser: Client, own: Any, other: Any, newcomer: Any
) -> None:
    response = admin_browser.post(
        ADD_URL, {"user_identifier": "jamie", "office": other.pk, "role": Role.ADMIN}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not Membership.objects.filter(office=other).exists()


@pytest.mark.parametrize(
    ("identifier", "error"),
    [
        ("nobody", "No account has that username or email address"),
        ("jam", "No account has that username or email address"),  # exact, never a prefix
        ("", "This field is required"),
    ],
)
def test_an_unknown_or_partial_name_is_a_clear_error(
    admin_browser: Client, own: Any, newcomer: Any, identifier: str, error: str
) -> None:
    before = Membership.objects.count()
    response = admin_browser.post(ADD_URL, {"user_identifier": identifier, "office": own.pk, "role": "staff"})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Membership.objects.count() == before


def test_an_email_shared_by_two_accounts_asks_for_the_username(admin_browser: Client, own: Any) -> None:
    factories.UserFactory.create(username="pat1", email="pat@example.org")
    factories.UserFactory.create(username="pat2", email="PAT@example.org")
    response = admin_browser.post(
        ADD_URL, {"user_identifier": "pat@example.org", "office": own.pk, "role": "staff"}
    )
    assert response.status_code == 200
    assert "More than one account uses that email address" in response.content.decode()
    assert not Membership.objects.filter(user__username__startswith="pat").exists()


def test_an_existing_member_is_not_added_twice(admin_browser: Client, own: Any, newcomer: Any) -> None:
    Membership.objects.create(user=newcomer, office=own, role=Role.OFFICIAL)
    response = admin_browser.post(ADD_URL, {"user_identifier": "jamie", "office": own.pk, "role": "admin"})
    assert response.status_code == 200
    assert "already a member of this office" in response.content.decode()
    assert Membership.objects.get(user=newcomer, office=own).role == Role.OFFICIAL


def test_an_admin_of_two_offices_chooses_between_them_only(
    admin_browser: Client, office_admin: Any, own: Any, other: Any, newcomer: Any
) -> None:
    third: Any = factories.OfficeFactory.create(slug="gamma", name="Gamma Office")
    Membership.objects.create(user=office_admin, office=third, role=Role.ADMIN)
    html = admin_browser.get(ADD_URL).content.decode()
    assert "Gamma Office" in html
    assert "SECRET-OFFICE" not in html
    response = admin_browser.post(ADD_URL, {"user_identifier": "jamie", "office": third.pk, "role": "staff"})
    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).office_id == third.pk


def test_the_user_of_a_membership_cannot_be_swapped_on_its_change_form(
    admin_browser: Client, own: Any, newcomer: Any
) -> None:
    membership = Membership.objects.create(user=newcomer, office=own, role=Role.STAFF)
    intruder: Any = factories.UserFactory.create(username="intruder")
    url = f"/admin/offices/membership/{membership.pk}/change/"
    assert admin_browser.get(url).status_code == 200
    response = admin_browser.post(url, {"user": intruder.pk, "office": own.pk, "role": Role.OFFICIAL})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user_id, membership.role) == (newcomer.pk, Role.OFFICIAL)


def test_other_offices_memberships_and_users_stay_hidden(
    admin_browser: Client, stranger: Any, other: Any
) -> None:
    for listing_url in ("/admin/offices/membership/", "/admin/offices/membership/?q=secret"):
        listing = admin_browser.get(listing_url)
        assert listing.status_code == 200
        assert "SECRET-USER" not in listing.content.decode()
        assert "SECRET-OFFICE" not in listing.content.decode()

    # The other office's membership, by id: the same answer as a membership that does not exist.
    foreign = admin_browser.get(f"/admin/offices/membership/{stranger.pk}/change/")
    missing = admin_browser.get("/admin/offices/membership/999999/change/")
    assert foreign.status_code == missing.status_code == 302
    assert foreign["Location"] == missing["Location"] == "/admin/"
    before = Membership.objects.get(pk=stranger.pk)
    admin_browser.post(f"/admin/offices/membership/{stranger.pk}/change/", {"role": "admin"})
    admin_browser.post(f"/admin/offices/membership/{stranger.pk}/delete/", {"post": "yes"})
    after = Membership.objects.get(pk=stranger.pk)
    assert (after.office_id, after.user_id, after.role) == (before.office_id, before.user_id, before.role)

    # The platform's users: neither the user admin nor the user search behind any picker.
    assert admin_browser.get("/admin/auth/user/").status_code == 403
    assert admin_browser.get(f"/admin/auth/user/{stranger.user_id}/change/").status_code == 403
    search = admin_browser.get(
        "/admin/autocomplete/",
        {"app_label": "offices", "model_name": "membership", "field_name": "user", "term": "SECRET"},
    )
    assert search.status_code == 403
    assert "SECRET-USER" not in search.content.decode()


def test_the_office_search_answers_with_only_the_admins_offices(
    admin_browser: Client, own: Any, other: Any
) -> None:
    response = admin_browser.get(
        "/admin/autocomplete/",
        {"app_label": "offices", "model_name": "membership", "field_name": "office", "term": "Office"},
    )
    assert response.status_code == 200
    assert [int(r["id"]) for r in json.loads(response.content)["results"]] == [own.pk]


def test_a_superuser_keeps_the_user_picker_and_any_office(own: Any, other: Any, newcomer: Any) -> None:
    root: Any = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    assert "admin-autocomplete" in client.get(ADD_URL).content.decode()
    search = client.get(
        "/admin/autocomplete/",
        {"app_label": "offices", "model_name": "membership", "field_name": "user", "term": "jam"},
    )
    assert search.status_code == 200
    assert [r["text"] for r in json.loads(search.content)["results"]] == ["jamie"]
    response = client.post(ADD_URL, {"user": newcomer.pk, "office": other.pk, "role": "admin"})
    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).office_id == other.pk


def test_an_office_admin_sets_a_members_staff_phone_once_per_office(
    admin_browser: Client, own: Any, other: Any, newcomer: Any, stranger: Any
) -> None:
    """The phone a member answers forwarded calls on is set on the membership's change page. Another member
    of the same office cannot take it (a clear error, nothing changed); a member of another office may
    have the same phone, since each office's calls are matched to its own members."""
    phone = "+12025550141"
    Membership.objects.filter(pk=stranger.pk).update(phone=phone)
    membership = Membership.objects.create(user=newcomer, office=own, role=Role.STAFF)
    url = f"/admin/offices/membership/{membership.pk}/change/"
    assert 'name="phone"' in admin_browser.get(url).content.decode()
    response = admin_browser.post(url, {"role": Role.STAFF, "phone": phone})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.phone == phone

    colleague = Membership.objects.create(
        user=factories.UserFactory.create(username="colleague"), office=own, role=Role.STAFF
    )
    taken = admin_browser.post(
        f"/admin/offices/membership/{colleague.pk}/change/", {"role": Role.OFFICIAL, "phone": phone}
    )
    assert taken.status_code == 200
    assert "already answers calls on +12025550141" in taken.content.decode()
    colleague.refresh_from_db()
    assert (colleague.phone, colleague.role) == ("", Role.STAFF)  # nothing was written

    not_e164 = admin_browser.post(url, {"role": Role.STAFF, "phone": "202-555-0141"})
    assert not_e164.status_code == 200
    membership.refresh_from_db()
    assert membership.phone == phone
