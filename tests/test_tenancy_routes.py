"""The route-matrix tenancy test.

Two offices with look-alike data (same constituent phones, same tag names) and a canary string in office B.
A member of office A requests every URL route, and every object of B through A's URLs. Each must answer
404 (or refuse), no response may contain the canary, and B's rows must not change. A route that is not in
ROUTES below fails the test, so a new view cannot ship without a tenancy check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.core import serializers
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests import factories

CANARY = "CANARY-b7f3a9-office-b"


def iter_routes(
    resolvers: list[Any] | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(full route pattern, namespaced name) for every URL the project serves."""
    for entry in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from iter_routes(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name or ''}"


@dataclass
class World:
    a: Any
    b: Any
    user_a: Any
    admin_a: Any
    b_objects: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def world(db: None) -> World:
    a = factories.OfficeFactory.create(slug="office-a", name="Office A")
    b = factories.OfficeFactory.create(slug="office-b", name=f"Office B {CANARY}")
    user_a = factories.MembershipFactory.create(office=a, role="staff", user__username="a-staff").user
    admin_a = factories.MembershipFactory.create(
        office=a, role="admin", user__username="a-admin", user__is_staff=True
    ).user
    factories.MembershipFactory.create(office=b, role="admin", user__username=f"b-admin-{CANARY}")
    objects: dict[str, Any] = {}
    for office, marker in ((a, "office A"), (b, CANARY)):
        number = factories.PhoneNumberFactory.create(
            office=office, e164="+14155550100" if office is a else "+14155550200"
        )
        tag = factories.TagFactory.create(office=office, name="Health care", color="#112233")
        queue = factories.QueueFactory.create(office=office, name="Casework", description=marker)
        constituent = factories.ConstituentFactory.create(
            office=office, phone="+12025550123", first_name=marker
        )
        conversation = factories.ConversationFactory.create(
            constituent=constituent, queue=queue, last_message_preview=marker
        )
        conversation.tags.add(tag)
        message = factories.MessageFactory.create(
            conversation=conversation, body=f"Please help {marker}", to_number=number.e164
        )
        from messages.models import Media

        media = Media.objects.create(
            office=office,
            message=message,
            index=0,
            provider_url="https://api.twilio.com/x",
            status="stored",
            content_type="image/png",
        )
        media.file.save(
            "canary.png",
            __import__("django.core.files.base", fromlist=["ContentFile"]).ContentFile(marker.encode()),
        )
        letter, bulk = _correspondence_objects(office, conversation, marker)
        if office is b:
            objects.update(
                letter=letter,
                bulk_reply=bulk,
                conversation=conversation,
                message=message,
                constituent=constituent,
                tag=tag,
                queue=queue,
                number=number,
                media=media,
            )
    return World(a=a, b=b, user_a=user_a, admin_a=admin_a, b_objects=objects)


def _correspondence_objects(office: Any, conversation: Any, marker: str) -> tuple[Any, Any]:
    """An approved form letter and a draft bulk reply to one conversation, both naming the office's marker."""
    from correspondence.services import bulk, letters

    admin = factories.MembershipFactory.create(office=office, role="admin")
    letter = letters.letter_create(
        office=office, actor=admin.user, name=f"Letter {marker}", body=f"Dear {{first_name}}, {marker}"
    )
    letters.letter_approve(office=office, membership=admin, pk=letter.pk)
    draft = bulk.bulk_reply_create(
        office=office,
        actor=admin.user,
        audience=bulk.Audience(conversations=(conversation.pk,)),
        letter_id=letter.pk,
    )
    return letter, draft


def snapshot(office: Any) -> str:
    """Every row that belongs to the office, serialised: any change by A's requests shows up here."""
    rows: list[Any] = []
    for model in apps.get_models():
        names = {f.name for f in model._meta.get_fields()}
        if "office" in names:
            rows.extend(model._default_manager.filter(office=office).order_by("pk"))
    rows.append(type(office)._default_manager.get(pk=office.pk))
    dump: str = serializers.serialize("json", rows)
    return dump


# --- The matrix ---------------------------------------------------------------------------------------------
# Each entry: how to probe the route as a member of office A. `office_urls` build URLs that point at B (B's
# slug, or B's objects under A's slug); each must 404 for GET and POST.

Probe = Callable[[World], list[str]]


def _office_scoped(suffix: Callable[[World, Any], list[str]]) -> Probe:
    def probe(w: World) -> list[str]:
        urls = [f"/o/{w.b.slug}/" + s for s in suffix(w, w.b)]
        urls += [f"/o/{w.a.slug}/" + s for s in suffix(w, w.b) if any(ch.isdigit() for ch in s)]
        return urls

    return probe


OFFICE_SCOPED: dict[str, Probe] = {
    "messages:inbox": _office_scoped(lambda w, b: [""]),
    "messages:conversation": _office_scoped(
        lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/"]
    ),
    "messages:conversation-reply": _office_scoped(
        lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/reply/"]
    ),
    "messages:media": _office_scoped(lambda w, b: [f"media/{w.b_objects['media'].pk}/"]),
    "demo:sms-simulator": _office_scoped(lambda w, b: ["simulator/"]),
}

# Routes that are not office-scoped, and how they are protected.
GLOBAL_ROUTES = {
    "healthz": "public health probe; reveals no tenant data",
    "home": "lists only the user's own memberships",
    "login": "public",
    "password_reset_confirm": "public: an invitation's one-time link (Django checks the token)",
    "password_reset_complete": "public: says the password is set, links to the login page",
    "logout": "ends the session",
    "twilio:sms-received": "Twilio webhook: signature required",
    "twilio:sms-status": "Twilio webhook: signature required",
}
WEBHOOKS = ["twilio:sms-received", "twilio:sms-status"]

# --- The voice hotline ---
# B has no voicemail or campaign in this world: B's message and tag ids stand in, and must 404 just the same.
# tests/voice/ checks real cross-office voicemails and campaigns.
OFFICE_SCOPED.update(
    {
        "voice:voicemail-audio": _office_scoped(
            lambda w, b: [f"voice/voicemails/{w.b_objects['message'].pk}/audio/"]
        ),
        "voice:call-in-list": _office_scoped(lambda w, b: ["voice/call-in/"]),
        "voice:call-in-detail": _office_scoped(lambda w, b: [f"voice/call-in/{w.b_objects['tag'].pk}/"]),
        "voice:call-in-tally": _office_scoped(
            lambda w, b: [f"voice/call-in/{w.b_objects['tag'].pk}/tally.json"]
        ),
        "demo:call-simulator": _office_scoped(lambda w, b: ["voice/simulator/"]),
        "voice:call-in-switch": _office_scoped(
            lambda w, b: [f"voice/call-in/{w.b_objects['tag'].pk}/switch/"]
        ),
    }
)
_VOICE_WEBHOOKS = [
    "twilio:voice-received",
    "twilio:voice-menu",
    "twilio:voice-dial",
    "twilio:voice-staff-answered",
    "twilio:voice-record",
    "twilio:voice-recording",
    "twilio:voice-transcription",
    "twilio:voice-status",
]
GLOBAL_ROUTES.update({name: "Twilio voice webhook: signature required" for name in _VOICE_WEBHOOKS})
GLOBAL_ROUTES["twilio:voice-audio"] = (
    "IVR greeting audio for Twilio <Play>: signed URL token, 403 without one"
)
WEBHOOKS += [*_VOICE_WEBHOOKS, "twilio:voice-audio"]

# --- The staff inbox ---
# B's objects through A's URLs (and B's slug) must 404. The API lives under /api/v1/offices/<slug>/, so its
# probes build their own URLs; being in OFFICE_SCOPED puts them in test_every_route_is_in_the_matrix too.
OFFICE_SCOPED.update(
    {
        "messages:inbox-updates": _office_scoped(lambda w, b: ["updates/"]),
        "messages:inbox-count": _office_scoped(lambda w, b: ["count/"]),
        "messages:bulk": _office_scoped(lambda w, b: ["bulk/"]),
        # B has no bulk action in this world: B's conversation id stands in, and must 404 just the same.
        # tests/messages/inbox/test_bulk_confirm_undo.py undoes a real bulk close of B as a member of A.
        "messages:bulk-undo": _office_scoped(lambda w, b: [f"bulk/{w.b_objects['conversation'].pk}/undo/"]),
        "messages:conversation-triage": _office_scoped(
            lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/triage/"]
        ),
        "messages:conversation-timeline": _office_scoped(
            lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/timeline/"]
        ),
        "messages:conversation-presence": _office_scoped(
            lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/presence/"]
        ),
        "messages:constituent-update": _office_scoped(
            lambda w, b: [f"conversations/{w.b_objects['conversation'].pk}/constituent/"]
        ),
        "messages-api:conversation-list": lambda w: [f"/api/v1/offices/{w.b.slug}/conversations/"],
    }
)


# --- Form letters and bulk replies ---
# B's letter and draft bulk reply through A's URLs (and B's slug) must 404. Roles within A are checked below.
_LETTER_ROUTES = {
    "correspondence:letter": "",
    "correspondence:letter-approve": "approve/",
    "correspondence:letter-request-approval": "request-approval/",
    "correspondence:letter-retire": "retire/",
}
_BULK_REPLY_ROUTES = {
    "correspondence:bulk-reply": "",
    "correspondence:bulk-reply-progress": "progress/",
    "correspondence:bulk-reply-start": "start/",
    "correspondence:bulk-reply-pause": "pause/",
    "correspondence:bulk-reply-resume": "resume/",
    "correspondence:bulk-reply-cancel": "cancel/",
    "correspondence:bulk-reply-report": "report/",
    "correspondence:bulk-reply-report-csv": "report.csv",
}


def _letter_probe(tail: str) -> Probe:
    return _office_scoped(lambda w, b: [f"letters/{w.b_objects['letter'].pk}/{tail}"])


def _bulk_reply_probe(tail: str) -> Probe:
    return _office_scoped(lambda w, b: [f"bulk-replies/{w.b_objects['bulk_reply'].pk}/{tail}"])


OFFICE_SCOPED.update(
    {
        "correspondence:letters": _office_scoped(lambda w, b: ["letters/"]),
        "correspondence:letter-new": _office_scoped(lambda w, b: ["letters/new/"]),
        "correspondence:bulk-replies": _office_scoped(lambda w, b: ["bulk-replies/"]),
        "correspondence:bulk-reply-new": _office_scoped(lambda w, b: ["bulk-replies/new/"]),
        **{name: _letter_probe(tail) for name, tail in _LETTER_ROUTES.items()},
        **{name: _bulk_reply_probe(tail) for name, tail in _BULK_REPLY_ROUTES.items()},
    }
)


def _api_probe(tail: Callable[[Any], str], *, own_slug_too: bool = True) -> Probe:
    """B's objects through the API: with B's slug (not a member), and with A's slug and B's ids."""

    def urls(w: Any) -> list[str]:
        slugs = [w.b.slug, w.a.slug] if own_slug_too else [w.b.slug]
        return [f"/api/v1/offices/{slug}/{tail(w)}" for slug in slugs]

    return urls


def _bulk_reply_action(action: str) -> Callable[[Any], str]:
    return lambda w: f"bulk-replies/{w.b_objects['bulk_reply'].pk}/{action}/"


OFFICE_SCOPED.update(
    {
        "correspondence-api:letter-list": _api_probe(lambda w: "letters/", own_slug_too=False),
        "correspondence-api:bulk-reply-list": _api_probe(lambda w: "bulk-replies/", own_slug_too=False),
        "correspondence-api:letter-detail": _api_probe(lambda w: f"letters/{w.b_objects['letter'].pk}/"),
        "correspondence-api:letter-approve": _api_probe(
            lambda w: f"letters/{w.b_objects['letter'].pk}/approve/"
        ),
        **{
            f"correspondence-api:bulk-reply-{action}": _api_probe(_bulk_reply_action(action))
            for action in ("start", "pause", "resume", "cancel")
        },
        "correspondence-api:bulk-reply-detail": _api_probe(
            lambda w: f"bulk-replies/{w.b_objects['bulk_reply'].pk}/"
        ),
    }
)


@dataclass(frozen=True)
class RoleCheck:
    """How one correspondence route answers within the member's own office.

    ``method``: the one method it serves for this check. ``write``: a change, which an official may not
    make (403), nor even see the form of. ``staff``: the status a staff member gets. ``data``: the form sent
    with a POST, built from the office's own objects.
    """

    suffix: Callable[[Any, Any, Any], str]
    method: str
    write: bool
    staff: int
    data: Callable[[Any], dict[str, Any]] = lambda own: {}


def _letter(tail: str) -> Callable[[Any, Any, Any], str]:
    return lambda letter, bulk, own: f"letters/{letter.pk}/{tail}"


def _bulk(tail: str) -> Callable[[Any, Any, Any], str]:
    return lambda letter, bulk, own: f"bulk-replies/{bulk.pk}/{tail}"


ROLE_CHECKS: dict[tuple[str, str], RoleCheck] = {
    ("correspondence:letters", "get"): RoleCheck(lambda *_: "letters/", "get", False, 200),
    ("correspondence:letter-new", "get"): RoleCheck(lambda *_: "letters/new/", "get", True, 200),
    ("correspondence:letter-new", "post"): RoleCheck(
        lambda *_: "letters/new/",
        "post",
        True,
        302,
        lambda own: {"name": "New", "body": "Hello {first_name}"},
    ),
    ("correspondence:letter", "get"): RoleCheck(_letter(""), "get", False, 200),
    ("correspondence:letter", "post"): RoleCheck(
        _letter(""), "post", True, 302, lambda own: {"name": "Renamed", "body": "Hi {first_name|there}"}
    ),
    ("correspondence:letter-approve", "post"): RoleCheck(_letter("approve/"), "post", True, 302),
    ("correspondence:letter-request-approval", "post"): RoleCheck(
        _letter("request-approval/"), "post", True, 302
    ),
    ("correspondence:letter-retire", "post"): RoleCheck(_letter("retire/"), "post", True, 302),
    ("correspondence:bulk-replies", "get"): RoleCheck(lambda *_: "bulk-replies/", "get", False, 200),
    ("correspondence:bulk-reply-new", "post"): RoleCheck(
        lambda *_: "bulk-replies/new/", "post", True, 302, lambda own: {"ids": [own.pk]}
    ),
    ("correspondence:bulk-reply", "get"): RoleCheck(_bulk(""), "get", False, 200),
    ("correspondence:bulk-reply", "post"): RoleCheck(
        _bulk(""), "post", True, 302, lambda own: {"skip_replied": "1"}
    ),
    ("correspondence:bulk-reply-progress", "get"): RoleCheck(_bulk("progress/"), "get", False, 200),
    ("correspondence:bulk-reply-start", "post"): RoleCheck(_bulk("start/"), "post", True, 302),
    ("correspondence:bulk-reply-pause", "post"): RoleCheck(_bulk("pause/"), "post", True, 302),
    ("correspondence:bulk-reply-resume", "post"): RoleCheck(_bulk("resume/"), "post", True, 302),
    ("correspondence:bulk-reply-cancel", "post"): RoleCheck(_bulk("cancel/"), "post", True, 302),
    ("correspondence:bulk-reply-report", "get"): RoleCheck(_bulk("report/"), "get", False, 200),
    ("correspondence:bulk-reply-report-csv", "get"): RoleCheck(_bulk("report.csv"), "get", False, 200),
}


def _own(w: World) -> tuple[Any, Any, Any]:
    """Office A's letter, draft bulk reply and conversation."""
    from correspondence.models import BulkReply, FormLetter
    from messages.models import Conversation

    return (
        FormLetter.objects.get(office=w.a),
        BulkReply.objects.get(office=w.a),
        Conversation.objects.get(office=w.a),
    )


def _request(client: Client, w: World, key: tuple[str, str]) -> Any:
    check = ROLE_CHECKS[key]
    letter, bulk, own = _own(w)
    url = f"/o/{w.a.slug}/" + check.suffix(letter, bulk, own)
    return getattr(client, check.method)(url, data=check.data(own))


def test_every_correspondence_route_has_role_checks() -> None:
    names = {name for _, name in iter_routes() if name.startswith("correspondence:")}
    assert names == {name for name, _ in ROLE_CHECKS}


@pytest.mark.parametrize("key", sorted(ROLE_CHECKS), ids="-".join)
def test_anonymous_requests_to_correspondence_routes_go_to_the_login_page(
    world: World, key: tuple[str, str]
) -> None:
    from django.conf import settings
    from django.shortcuts import resolve_url

    before = snapshot(world.a)
    response = _request(Client(), world, key)
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL) + "?next=")
    assert snapshot(world.a) == before


@pytest.mark.parametrize("key", sorted(ROLE_CHECKS), ids="-".join)
def test_an_official_reads_correspondence_pages_and_may_change_nothing(
    world: World, key: tuple[str, str]
) -> None:
    official = factories.MembershipFactory.create(office=world.a, role="official").user
    client = Client()
    client.force_login(official)
    before = snapshot(world.a)
    response = _request(client, world, key)
    assert response.status_code == (403 if ROLE_CHECKS[key].write else 200)
    assert snapshot(world.a) == before
    _assert_hidden(response, str(key))


@pytest.mark.parametrize("key", sorted(ROLE_CHECKS), ids="-".join)
def test_staff_use_every_correspondence_route(world: World, key: tuple[str, str]) -> None:
    client = Client()
    client.force_login(world.user_a)
    response = _request(client, world, key)
    assert response.status_code == ROLE_CHECKS[key].staff
    if response.status_code == 302:
        assert response["Location"].startswith(f"/o/{world.a.slug}/")
    if getattr(response, "streaming", False):
        assert b"name,phone" in b"".join(response.streaming_content)
    _assert_hidden(response, str(key))


def test_bulk_actions_of_a_member_of_a_never_touch_b(world: World) -> None:
    """Bulk actions carry ids (and filter values) in the POST body, which the generic probe above cannot."""
    from messages.models import Conversation

    before = snapshot(world.b)
    own = Conversation.objects.filter(office=world.a).values_list("pk", flat=True).first()
    assert own is not None
    b_conversation, b_tag, b_queue = (world.b_objects[k].pk for k in ("conversation", "tag", "queue"))
    client = Client()
    client.force_login(world.user_a)
    attempts = [
        {"action": "close", "ids": [b_conversation]},
        {"action": "close", "ids": [own, b_conversation]},
        {"action": "tag", "tag": b_tag, "ids": [own]},
        {"action": "queue", "queue": b_queue, "ids": [own]},
        {"action": "untag", "tag": b_tag, "scope": "matching"},
        {"action": "close", "scope": "matching", "f_tag": b_tag},
        {"action": "close", "scope": "matching", "f_queue": b_queue},
    ]
    for data in attempts:
        response = client.post(f"/o/{world.a.slug}/bulk/", data, follow=True)
        assert response.status_code in (200, 404), data
        _assert_hidden(response, f"bulk {data}")
    assert snapshot(world.b) == before
    assert Conversation.objects.get(pk=own).status == "open"


def test_triage_with_b_objects_on_a_conversation_of_a_changes_nothing(world: World) -> None:
    from messages.models import Conversation

    before = snapshot(world.b)
    own = Conversation.objects.filter(office=world.a).first()
    assert own is not None
    client = Client()
    client.force_login(world.admin_a)
    b_admin_id = type(world.user_a)._default_manager.get(username__startswith="b-admin").pk
    for data in (
        {"action": "tag", "tag": world.b_objects["tag"].pk},
        {"action": "untag", "tag": world.b_objects["tag"].pk},
        {"action": "queue", "queue": world.b_objects["queue"].pk},
        {"action": "assign", "assignee": b_admin_id},
    ):
        response = client.post(f"/o/{world.a.slug}/conversations/{own.pk}/triage/", data, follow=True)
        assert response.status_code == 200
        _assert_hidden(response, f"triage {data}")
    own.refresh_from_db()
    assert own.assignee_id is None
    assert own.queue is not None
    assert own.queue.office_id == world.a.pk
    assert set(own.tags.values_list("office_id", flat=True)) == {world.a.pk}
    assert snapshot(world.b) == before


def test_inbox_search_filters_and_api_of_a_show_nothing_of_b(world: World) -> None:
    client = Client()
    client.force_login(world.user_a)
    b_tag = world.b_objects["tag"].pk
    for url in (
        f"/o/{world.a.slug}/?status=any&q=help",
        f"/o/{world.a.slug}/?status=any&q=CANARY",
        f"/o/{world.a.slug}/?status=any&q=2025550123",
        f"/o/{world.a.slug}/?tag={b_tag}",
        f"/o/{world.a.slug}/updates/?status=any&tag={b_tag}",
        f"/o/{world.a.slug}/count/?status=any&q=help",
        f"/api/v1/offices/{world.a.slug}/conversations/?status=any",
        f"/api/v1/offices/{world.a.slug}/conversations/?status=any&q=help",
        f"/api/v1/offices/{world.a.slug}/conversations/?tag={b_tag}",
    ):
        response = client.get(url)
        assert response.status_code in (200, 400), url
        _assert_hidden(response, url)
    listing = client.get(f"/api/v1/offices/{world.a.slug}/conversations/?status=any&q=help").json()
    assert len(listing["results"]) == 1
    assert listing["results"][0]["constituent"]["name"].startswith("office A")


def route_is_admin(route: str) -> bool:
    return route.startswith("admin/")


def test_every_route_is_in_the_matrix() -> None:
    uncovered = [
        (route, name)
        for route, name in iter_routes()
        if not route_is_admin(route) and name not in OFFICE_SCOPED and name not in GLOBAL_ROUTES
    ]
    assert uncovered == [], f"routes without a tenancy check (add them to the matrix): {uncovered}"


def _assert_hidden(response: Any, url: str) -> None:
    body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) else ""
    assert CANARY not in body, f"{url} leaked office B's canary"


@pytest.mark.parametrize("name", sorted(OFFICE_SCOPED))
def test_member_of_a_gets_404_for_everything_of_b(world: World, name: str) -> None:
    before = snapshot(world.b)
    for user in (world.user_a, world.admin_a):
        client = Client()
        client.force_login(user)
        for url in OFFICE_SCOPED[name](world):
            for method in ("get", "post"):
                response = getattr(client, method)(url, data={"body": f"hi {CANARY}", "token": "t"})
                assert response.status_code in (404, 405), f"{method.upper()} {url} → {response.status_code}"
                _assert_hidden(response, url)
    assert snapshot(world.b) == before


@pytest.mark.parametrize("name", sorted(set(GLOBAL_ROUTES) - set(WEBHOOKS) - {"logout"}))
def test_global_routes_show_no_other_office(world: World, name: str) -> None:
    client = Client()
    client.force_login(world.user_a)
    route = dict((n, r) for r, n in iter_routes())[name]
    response = client.get("/" + route, follow=True)
    assert response.status_code in (200, 503)
    _assert_hidden(response, route)


@pytest.mark.parametrize("name", WEBHOOKS)
def test_webhooks_refuse_unsigned_posts_and_change_nothing(world: World, name: str) -> None:
    before = snapshot(world.b)
    route = dict((n, r) for r, n in iter_routes())[name]
    response = Client().post(
        "/" + route, {"MessageSid": "SM" + "1" * 32, "To": "+14155550200", "Body": CANARY}
    )
    assert response.status_code == 403
    assert snapshot(world.b) == before


def test_admin_changelists_show_only_own_office(world: World) -> None:
    from django.contrib import admin as django_admin

    client = Client()
    client.force_login(world.admin_a)
    before = snapshot(world.b)
    for model in django_admin.site._registry:
        meta = model._meta
        changelist = f"/admin/{meta.app_label}/{meta.model_name}/"
        response = client.get(changelist)
        assert response.status_code in (200, 403), f"{changelist} → {response.status_code}"
        _assert_hidden(response, changelist)
        # B's objects through the change view: never shown.
        names = {f.name for f in meta.get_fields()}
        if "office" in names:
            for obj in model._default_manager.filter(office=world.b)[:3]:
                url = f"{changelist}{obj.pk}/change/"
                response = client.get(url, follow=True)
                _assert_hidden(response, url)
                response = client.post(url, {"name": "hijacked"}, follow=True)
                _assert_hidden(response, url)
    assert snapshot(world.b) == before


# Admin routes that are not a model's changelist or change form, probed with B's objects by A's admin.
ADMIN_OBJECT_ROUTES: dict[str, Callable[[World], str]] = {
    "admin:civicdesk_messages_message_redact": lambda w: (
        f"/admin/civicdesk_messages/message/{w.b_objects['message'].pk}/redact/"
    ),
}


def test_every_custom_admin_route_is_probed() -> None:
    """Our ModelAdmins' own URLs (get_urls) beyond add/change/delete/history need a probe above."""
    ours = tuple(f"admin:{label}_" for label in ("offices", "constituents", "civicdesk_messages"))
    standard = ("_add", "_change", "_delete", "_history", "_changelist")
    custom = {
        name
        for route, name in iter_routes()
        if route_is_admin(route) and name.startswith(ours) and not name.endswith(standard)
    }
    assert custom == set(ADMIN_OBJECT_ROUTES), "admin routes without a tenancy probe (add them above)"


@pytest.mark.parametrize("name", sorted(ADMIN_OBJECT_ROUTES))
def test_a_admin_gets_404_for_b_objects_through_custom_admin_routes(world: World, name: str) -> None:
    before = snapshot(world.b)
    client = Client()
    client.force_login(world.admin_a)
    url = ADMIN_OBJECT_ROUTES[name](world)
    for method in ("get", "post"):
        response = getattr(client, method)(url, data={"reason": f"hi {CANARY}", "replacement": "x"})
        assert response.status_code == 404, f"{method.upper()} {url} → {response.status_code}"
        _assert_hidden(response, url)
    assert snapshot(world.b) == before


def test_snapshot_detects_a_change(world: World) -> None:
    """The isolation assertions above rely on snapshot(); prove it can fail."""
    before = snapshot(world.b)
    world.b_objects["tag"].name = "changed"
    world.b_objects["tag"].save()
    assert snapshot(world.b) != before
    assert json.loads(before)
