"""GET /api/v1/offices/<slug>/conversations/: the inbox FilterSet over REST, membership enforced."""

from __future__ import annotations

from django.test import Client

from tests import factories

URL = "/api/v1/offices/alpha/conversations/"


def test_lists_open_conversations_with_what_a_row_shows(inbox):
    response = inbox.client_for(inbox.staff).get(URL)
    assert response.status_code == 200
    data = response.json()
    assert [r["constituent"]["name"] for r in data["results"]] == [
        "Pat Rivera",
        "Sam Lee",
        "Dana Cruz",
        "Jo Quinn",
    ]
    first = data["results"][0]
    assert first["tags"] == [{"id": inbox.health.pk, "name": "Health care"}]
    assert first["queue"] == {"id": inbox.casework.pk, "name": "Casework"}
    assert first["is_unread"] is True
    assert data["next"] is None


def test_same_filters_as_the_inbox(inbox):
    client = inbox.client_for(inbox.staff)
    assert [r["id"] for r in client.get(URL, {"q": "medicare"}).json()["results"]] == [
        inbox.conversations["voicemail"].pk
    ]
    assert [r["id"] for r in client.get(URL, {"assignee": "me"}).json()["results"]] == [
        inbox.conversations["rent"].pk
    ]
    assert len(client.get(URL, {"status": "any"}).json()["results"]) == 6


def test_cursor_pagination(inbox):
    client = inbox.client_for(inbox.staff)
    first = client.get(URL, {"status": "any", "size": 4}).json()
    assert len(first["results"]) == 4
    assert first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 2
    assert second["next"] is None


def test_invalid_filter_is_a_400(inbox):
    response = inbox.client_for(inbox.staff).get(URL, {"tag": str(factories.TagFactory.create().pk)})
    assert response.status_code == 400
    assert "tag" in response.json()


def test_non_members_get_404_and_anonymous_users_403(inbox):
    outsider = factories.MembershipFactory.create(role="admin").user
    assert inbox.client_for(outsider).get(URL).status_code == 404
    assert Client().get(URL).status_code == 403


def test_officials_can_read(inbox):
    assert inbox.client_for(inbox.official).get(URL).status_code == 200
