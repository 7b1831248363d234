"""The office navigation: staff find the inbox, the call-in tallies and (in demo mode) both simulators."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from offices.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

INBOX = "/o/alpha/"
CALL_IN = "/o/alpha/voice/call-in/"
TEXT_SIMULATOR = "/o/alpha/simulator/"
CALL_SIMULATOR = "/o/alpha/voice/simulator/"
LETTERS = "/o/alpha/letters/"
BULK_REPLIES = "/o/alpha/bulk-replies/"


def office_nav(client: Client, url: str) -> dict[str, str]:
    """The office navigation's links on a page: {href: the <a> tag's attributes and text}."""
    response = client.get(url)
    assert response.status_code == 200, url
    nav = re.search(
        r'<nav class="officenav" aria-label="Office">(.*?)</nav>', response.content.decode(), re.S
    )
    assert nav is not None, url
    return {href: rest for href, rest in re.findall(r'<a href="([^"]+)"([^>]*>[^<]*)</a>', nav.group(1))}


def member(office: Any, role: str) -> Client:
    membership: Any = factories.MembershipFactory.create(office=office, role=role)
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF])
def test_in_demo_mode_staff_find_both_simulators_and_the_call_in_tallies(
    office: Any, phone_number: Any, settings: Any, role: str
) -> None:
    settings.DEMO_MODE = True
    client = member(office, role)

    links = office_nav(client, INBOX)

    assert list(links) == [INBOX, CALL_IN, LETTERS, BULK_REPLIES, TEXT_SIMULATOR, CALL_SIMULATOR]
    assert links[CALL_IN].endswith(">Call-in tallies")
    assert links[CALL_SIMULATOR].endswith(">Call simulator")
    for url in links:  # every link leads to a page this member may open
        assert client.get(url).status_code == 200, url
    assert 'aria-current="page"' in links[INBOX]
    assert 'aria-current="page"' in office_nav(client, CALL_SIMULATOR)[CALL_SIMULATOR]


def test_officials_find_the_call_in_tallies_but_no_simulator(office: Any, settings: Any) -> None:
    settings.DEMO_MODE = True
    client = member(office, Role.OFFICIAL)

    links = office_nav(client, INBOX)

    assert list(links) == [INBOX, CALL_IN, LETTERS, BULK_REPLIES]
    assert 'aria-current="page"' in office_nav(client, CALL_IN)[CALL_IN]


def test_outside_demo_mode_there_is_no_simulator_link(office: Any, settings: Any) -> None:
    settings.DEMO_MODE = False
    client = member(office, Role.ADMIN)

    assert list(office_nav(client, INBOX)) == [INBOX, CALL_IN, LETTERS, BULK_REPLIES]
    assert client.get(CALL_SIMULATOR).status_code == 404


def test_pages_outside_an_office_have_no_office_navigation(office: Any) -> None:
    client = member(office, Role.STAFF)

    assert 'class="officenav"' not in client.get("/").content.decode()


def test_each_simulator_page_is_headed_with_the_name_its_link_has(
    office: Any, phone_number: Any, settings: Any
) -> None:
    settings.DEMO_MODE = True
    client = member(office, Role.STAFF)
    links = office_nav(client, INBOX)

    for url in (TEXT_SIMULATOR, CALL_SIMULATOR):
        label = links[url].rsplit(">", 1)[-1]
        heading = re.search(r"<h1>([^<]*)</h1>", client.get(url).content.decode())
        assert heading is not None, url
        assert heading.group(1) == label, url


def test_a_superuser_in_no_office_is_told_what_the_account_is_for(office: Any) -> None:
    root: Any = factories.UserFactory.create(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)

    home = client.get("/").content.decode()

    assert "a member of none" in home
    assert 'href="/admin/"' in home
    assert client.get(INBOX).status_code == 404  # no way into an office's inbox without a membership
