"""The inbox views: permissions, status codes and shape (behaviour is tested on services and selectors)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from constituents.models import Constituent
from messages.models import Channel, Conversation, ConversationStatus, ConversationTag, Message, MessageStatus
from messages.services.canned import canned_response_create
from messages.services.presence import replying_mark
from tests import factories

XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def test_anonymous_users_are_sent_to_login(inbox):
    response = Client().get("/o/alpha/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_inbox_lists_open_conversations_with_rail_counts(inbox):
    response = inbox.client_for(inbox.staff).get("/o/alpha/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("Pat Rivera", "Sam Lee", "Dana Cruz", "Jo Quinn"):
        assert name in body
    assert "Ari Stone" not in body  # closed
    assert 'aria-current="page"' in body
    rail = response.context["rail"]
    assert [(e.label, e.count) for e in rail["views"]] == [
        ("My conversations", 1),
        ("Unassigned", 2),
        ("All open", 4),
    ]
    assert [(e.label, e.count) for e in rail["more"]] == [("Voicemails", 1), ("Snoozed", 1), ("Closed", 1)]
    assert "Content-Security-Policy" in response.headers


def test_rows_show_unread_tags_channel_and_assignee(inbox):
    body = inbox.client_for(inbox.staff).get("/o/alpha/").content.decode()
    assert 'class="row unread"' in body
    assert "Health care" in body
    assert "channel-voicemail" in body
    assert ">alice<" in body


def test_search_highlights_after_escaping(inbox):
    add_xss = factories.MessageFactory.create(
        conversation=inbox.conversations["water"], body=f"water {XSS} water", created_at=timezone.now()
    )
    assert add_xss.pk
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"q": "water"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<mark>water</mark>" in body
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in body
    assert "<img src=x" not in body


def test_a_search_for_markup_is_escaped_too(inbox):
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"q": XSS})
    assert response.status_code == 200
    assert "<script>alert" not in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"q": "\x00"},
        {"q": "'\"\\;--"},
        {"q": "a:* & | ! <-> (("},
        {"after": "not-a-cursor"},
        {"size": "-5"},
        {"size": "99999999999999999999"},
        {"since": "not a date"},
        {"since": "0001-01-01", "until": "9999-12-31"},
        {"status": "deleted"},
        {"tag": "999999"},
        {"assignee": "1 OR 1=1"},
    ],
)
def test_hostile_parameters_never_500(inbox, params):
    response = inbox.client_for(inbox.staff).get("/o/alpha/", params)
    assert response.status_code in (200, 400)


def test_an_invalid_filter_shows_nothing_and_says_why(inbox):
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"tag": "999999"})
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert response.context["page"].conversations == []


def test_htmx_list_request_returns_only_the_list(inbox):
    response = inbox.client_for(inbox.staff).get(
        "/o/alpha/", headers={"HX-Request": "true", "HX-Target": "conversation-list"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="conversation-list"')
    assert "<html" not in body


def test_pagination_links_carry_the_filters(inbox):
    response = inbox.client_for(inbox.staff).get("/o/alpha/", {"status": "any", "size": "2"})
    next_url = response.context["next_url"]
    assert "status=any" in next_url
    assert "size=2" in next_url
    assert "after=" in next_url
    second = inbox.client_for(inbox.staff).get(next_url)
    assert [c.constituent.first_name for c in second.context["page"].conversations] == ["Dana", "Lee"]


def test_updates_poll_reports_changes_and_refreshes_the_rail(inbox):
    client = inbox.client_for(inbox.staff)
    signature = client.get("/o/alpha/").context["page"].signature
    quiet = client.get("/o/alpha/updates/", {"sig": signature})
    assert quiet.status_code == 200
    assert 'data-changed="0"' in quiet.content.decode()
    assert 'id="rail"' in quiet.content.decode()
    assert "hx-swap-oob" in quiet.content.decode()
    factories.MessageFactory.create(conversation=inbox.conversations["rent"], created_at=timezone.now())
    Conversation.objects.filter(pk=inbox.conversations["rent"].pk).update(last_activity_at=timezone.now())
    changed = client.get("/o/alpha/updates/", {"sig": signature})
    assert 'data-changed="1"' in changed.content.decode()


def test_match_count(inbox):
    response = inbox.client_for(inbox.staff).get("/o/alpha/count/", {"status": "any"})
    assert response.content.decode().strip() == "6 conversations"


def test_conversation_page_shows_the_whole_timeline(inbox):
    c = inbox.conversations["voicemail"]
    factories.MessageFactory.create(
        conversation=c, direction="outbound", channel=Channel.SMS, body="We got your message.",
        status="delivered",
        sent_by=inbox.staff, created_at=timezone.now(),
    )  # fmt: skip
    factories.MessageFactory.create(
        conversation=c, direction="internal", channel=Channel.NOTE, body="Check Medicare status",
        status=MessageStatus.RECEIVED, sent_by=inbox.staff, provider_sid=None, created_at=timezone.now(),
    )  # fmt: skip
    factories.MessageFactory.create(
        conversation=c, channel=Channel.CALL, body="", duration_seconds=185, created_at=timezone.now(),
        details={"answered_by": "alice"},
    )  # fmt: skip
    from messages.services import triage

    triage.conversation_tag(conversation=c, tag=inbox.health, actor=inbox.other_staff)
    response = inbox.client_for(inbox.staff).get(f"/o/alpha/conversations/{c.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Voicemail" in body
    assert "Transcript" in body
    assert "Medicare card" in body
    assert "We got your message." in body
    assert "Delivered" in body
    assert "Internal note by alice" in body
    assert "3:05" in body
    assert "bob</span>\n  tagged it “Health care”" in body


def test_opening_a_conversation_marks_it_read_for_staff_but_not_for_officials(inbox):
    c = inbox.conversations["water"]
    inbox.client_for(inbox.official).get(f"/o/alpha/conversations/{c.pk}/")
    c.refresh_from_db()
    assert c.is_unread
    inbox.client_for(inbox.staff).get(f"/o/alpha/conversations/{c.pk}/")
    c.refresh_from_db()
    assert not c.is_unread


def test_opted_out_constituent_shows_a_clear_block_and_no_composer(inbox):
    response = inbox.client_for(inbox.staff).get(
        f"/o/alpha/conversations/{inbox.conversations['optout'].pk}/"
    )
    body = response.content.decode()
    assert "Texting is blocked" in body
    assert 'id="reply-body"' not in body


def test_reply_queues_a_text(inbox, locmem_outbox):
    c = inbox.conversations["water"]
    response = inbox.client_for(inbox.staff).post(
        f"/o/alpha/conversations/{c.pk}/reply/", {"body": "Thanks for writing!", "token": "tok-1"}
    )
    assert response.status_code == 302
    message = Message.objects.get(conversation=c, direction="outbound")
    assert (message.body, message.sent_by_id, message.status) == (
        "Thanks for writing!",
        inbox.staff.pk,
        "queued",
    )


def test_reply_to_an_opted_out_constituent_is_refused(inbox):
    c = inbox.conversations["optout"]
    response = inbox.client_for(inbox.staff).post(
        f"/o/alpha/conversations/{c.pk}/reply/", {"body": "Hello?", "token": "tok-2"}, follow=True
    )
    assert "opted out" in response.content.decode()
    assert not Message.objects.filter(conversation=c, direction="outbound").exists()


def test_canned_responses_are_offered_rendered_and_escaped(inbox):
    Constituent.objects.filter(pk=inbox.conversations["water"].constituent_id).update(first_name='"><b>Pat')
    canned_response_create(office=inbox.office, title="Thanks", body="Hi {first_name}, from {official_name}.")
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    body = client.get(f"/o/alpha/conversations/{c.pk}/").content.decode()
    assert 'data-body="Hi &quot;&gt;&lt;b&gt;Pat, from Jordan Rivera."' in body
    canned_id = client.get(f"/o/alpha/conversations/{c.pk}/").context["canned"][0][0].pk
    prefilled = client.get(f"/o/alpha/conversations/{c.pk}/", {"canned": canned_id})
    assert prefilled.context["prefill"] == 'Hi "><b>Pat, from Jordan Rivera.'
    assert "&quot;&gt;&lt;b&gt;Pat, from Jordan Rivera.</textarea>" in prefilled.content.decode()


@pytest.mark.parametrize(
    ("data", "check"),
    [
        ({"action": "claim"}, lambda c, w: c.assignee_id == w.staff.pk),
        ({"action": "assign", "assignee": "none"}, lambda c, w: c.assignee_id is None),
        ({"action": "tag", "tag": "HOUSING"}, lambda c, w: c.tags.filter(name="Housing").exists()),
        ({"action": "untag", "tag": "HEALTH"}, lambda c, w: not c.tags.exists()),
        ({"action": "queue", "queue": "none"}, lambda c, w: c.queue_id is None),
        ({"action": "priority", "priority": "3"}, lambda c, w: c.priority == 3),
        ({"action": "snooze", "preset": "tomorrow"}, lambda c, w: c.status == "snoozed" and c.snoozed_until),
        ({"action": "close"}, lambda c, w: c.status == "closed"),
        (
            {"action": "note", "body": "Spoke to them."},
            lambda c, w: c.messages.filter(channel="note").exists(),
        ),
    ],
)
def test_triage_actions(inbox, data, check):
    c = inbox.conversations["water"]
    data = {k: (str(inbox.housing.pk) if v == "HOUSING" else str(inbox.health.pk) if v == "HEALTH" else v)
            for k, v in data.items()}  # fmt: skip
    response = inbox.client_for(inbox.staff).post(f"/o/alpha/conversations/{c.pk}/triage/", data)
    assert response.status_code == 302
    c.refresh_from_db()
    assert check(c, inbox)


def test_snooze_until_a_local_time(inbox):
    c = inbox.conversations["water"]
    moment = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    inbox.client_for(inbox.staff).post(
        f"/o/alpha/conversations/{c.pk}/triage/", {"action": "snooze", "until": moment}
    )
    c.refresh_from_db()
    assert c.status == ConversationStatus.SNOOZED
    local = timezone.localtime(c.snoozed_until, __import__("zoneinfo").ZoneInfo(inbox.office.time_zone))
    assert local.strftime("%Y-%m-%dT%H:%M") == moment


def test_triage_refusals_are_reported_not_raised(inbox):
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    for data in (
        {"action": "tag", "tag": str(factories.TagFactory.create().pk)},
        {"action": "assign", "assignee": str(inbox.official.pk)},
        {"action": "snooze"},
        {"action": "priority", "priority": "12"},
        {"action": "note", "body": ""},
    ):
        response = client.post(f"/o/alpha/conversations/{c.pk}/triage/", data, follow=True)
        assert response.status_code == 200
        assert 'class="flash-error"' in response.content.decode()
    assert client.post(f"/o/alpha/conversations/{c.pk}/triage/", {"action": "explode"}).status_code == 400


def test_triage_next_only_follows_same_site_paths(inbox):
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    ok = client.post(f"/o/alpha/conversations/{c.pk}/triage/", {"action": "claim", "next": "/o/alpha/"})
    assert ok["Location"] == "/o/alpha/"
    evil = client.post(
        f"/o/alpha/conversations/{c.pk}/triage/", {"action": "claim", "next": "https://evil.example/"}
    )
    assert evil["Location"] == f"/o/alpha/conversations/{c.pk}/"


def test_constituent_profile_edit(inbox):
    c = inbox.conversations["water"]
    profile = {
        "first_name": "Patricia",
        "last_name": "Rivera",
        "in_district": "true",
        "zip_code": "94110",
        "preferred_language": "es",
    }
    data = {f"profile-{k}": v for k, v in profile.items()}
    response = inbox.client_for(inbox.staff).post(f"/o/alpha/conversations/{c.pk}/constituent/", data)
    assert response.status_code == 302
    constituent = Constituent.objects.get(pk=c.constituent_id)
    assert (constituent.first_name, constituent.in_district, constituent.zip_code) == (
        "Patricia",
        True,
        "94110",
    )
    assert constituent.phone == "+12025550101"  # not editable here
    bad = inbox.client_for(inbox.staff).post(
        f"/o/alpha/conversations/{c.pk}/constituent/", {**data, "profile-email": "nope"}, follow=True
    )
    assert "Profile not saved" in bad.content.decode()


def test_official_sees_conversations_read_only(inbox):
    client = inbox.client_for(inbox.official)
    c = inbox.conversations["water"]
    listing = client.get("/o/alpha/").content.decode()
    assert 'id="bulk-form"' not in listing
    assert "row-select" not in listing
    page = client.get(f"/o/alpha/conversations/{c.pk}/").content.decode()
    assert "read-only access" in page
    assert 'id="reply-body"' not in page
    assert 'id="close-form"' not in page
    assert "Edit profile" not in page
    for url, data in (
        (f"/o/alpha/conversations/{c.pk}/reply/", {"body": "hi", "token": "t"}),
        (f"/o/alpha/conversations/{c.pk}/triage/", {"action": "close"}),
        (f"/o/alpha/conversations/{c.pk}/presence/", {}),
        (f"/o/alpha/conversations/{c.pk}/constituent/", {"profile-first_name": "X"}),
        ("/o/alpha/bulk/", {"action": "close", "ids": [c.pk]}),
    ):
        assert client.post(url, data).status_code == 403, url
    c.refresh_from_db()
    assert c.status == ConversationStatus.OPEN
    assert not c.messages.filter(direction="outbound").exists()


def test_bulk_view_reports_the_result(inbox):
    ids = [inbox.conversations[n].pk for n in ("water", "rent", "voicemail")]
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/",
        {"action": "tag", "tag": inbox.housing.pk, "ids": ids, "next": "/o/alpha/"},
        follow=True,
    )
    assert "2 conversations tagged “Housing”; 1 already had it." in response.content.decode()


@pytest.mark.parametrize(
    ("action", "missing"), [("assign", "an assignee"), ("tag", "a tag"), ("queue", "a queue")]
)
def test_bulk_view_names_the_missing_choice_in_plain_english(inbox, action, missing):
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/",
        {"action": action, "ids": [inbox.conversations["water"].pk], "next": "/o/alpha/"},
        follow=True,
    )
    assert f"Nothing was changed. Choose {missing} for this action." in response.content.decode()


def test_bulk_view_on_everything_matching_the_filter(inbox):
    client = inbox.client_for(inbox.staff)
    form = {"action": "close", "scope": "matching", "f_assignee": "none"}
    asked = client.post("/o/alpha/bulk/", form)
    assert "Close 2 conversations?" in asked.content.decode()
    assert Conversation.objects.filter(status="closed").count() == 1
    confirmation = {**form, "confirm": "1", **asked.context["fingerprint_fields"]}
    response = client.post("/o/alpha/bulk/", confirmation, follow=True)
    assert "2 conversations closed." in response.content.decode()
    assert Conversation.objects.filter(status="closed").count() == 3


def test_bulk_view_with_a_foreign_id_is_404_and_changes_nothing(inbox):
    foreign = factories.ConversationFactory.create()
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/", {"action": "close", "ids": [inbox.conversations["water"].pk, foreign.pk]}
    )
    assert response.status_code == 404
    assert Conversation.objects.filter(status="closed").count() == 1


def test_bulk_view_with_an_invalid_filter_changes_nothing(inbox):
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/",
        {
            "action": "tag",
            "tag": inbox.health.pk,
            "scope": "matching",
            "f_tag": str(factories.TagFactory.create().pk),
        },
        follow=True,
    )
    assert "Nothing was changed" in response.content.decode()
    assert ConversationTag.objects.filter(tag=inbox.health).count() == 1


def test_bulk_view_needs_a_target_for_the_action(inbox):
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/", {"action": "tag", "ids": [inbox.conversations["water"].pk]}, follow=True
    )
    assert "Nothing was changed" in response.content.decode()


def test_timeline_poll_returns_new_items_state_and_presence(inbox):
    c = inbox.conversations["water"]
    client = inbox.client_for(inbox.staff)
    page = client.get(f"/o/alpha/conversations/{c.pk}/")
    timeline = page.context["timeline"]
    params = {"m": timeline.last_message_id, "e": timeline.last_event_id, "since": page.context["since"],
              "sig": page.context["signature"]}  # fmt: skip
    quiet = client.get(f"/o/alpha/conversations/{c.pk}/timeline/", params).content.decode()
    assert "beforeend:#timeline" not in quiet
    assert 'id="conversation-state"' not in quiet
    factories.MessageFactory.create(conversation=c, body="One more thing!", created_at=timezone.now())
    from messages.services import triage

    triage.conversation_assign(conversation=c, assignee=inbox.other_staff, actor=inbox.other_staff)
    replying_mark(conversation=c, user=inbox.other_staff)
    busy = client.get(f"/o/alpha/conversations/{c.pk}/timeline/", params).content.decode()
    assert "beforeend:#timeline" in busy
    assert "One more thing!" in busy
    assert "badge-new" in busy
    assert 'id="conversation-state"' in busy
    assert "hx-swap-oob" in busy
    assert "<strong>bob</strong> is replying" in busy


def test_presence_heartbeat(inbox):
    c = inbox.conversations["water"]
    assert (
        inbox.client_for(inbox.other_staff).post(f"/o/alpha/conversations/{c.pk}/presence/").status_code
        == 204
    )
    page = inbox.client_for(inbox.staff).get(f"/o/alpha/conversations/{c.pk}/").content.decode()
    assert "is replying to this conversation" in page
    inbox.client_for(inbox.other_staff).post(f"/o/alpha/conversations/{c.pk}/presence/", {"state": "idle"})
    page = inbox.client_for(inbox.staff).get(f"/o/alpha/conversations/{c.pk}/").content.decode()
    assert "is replying to this conversation" not in page


def test_stored_xss_in_a_message_is_escaped_on_every_page(inbox):
    c = inbox.conversations["water"]
    Constituent.objects.filter(pk=c.constituent_id).update(first_name=XSS)
    factories.MessageFactory.create(conversation=c, body=XSS, created_at=timezone.now())
    Conversation.objects.filter(pk=c.pk).update(last_message_preview=XSS)
    client = inbox.client_for(inbox.staff)
    for url in ("/o/alpha/", f"/o/alpha/conversations/{c.pk}/", "/o/alpha/?q=pwned"):
        body = client.get(url).content.decode()
        assert "<script>alert" not in body, url
        assert "onerror=alert" not in body.replace("onerror=alert(1)&gt;", ""), url


def test_login_locks_out_after_repeated_failures(inbox):
    client = Client()
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-for-tests-only"})
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_login_works(inbox):
    response = Client().post(
        "/accounts/login/", {"username": "alice", "password": "pw-for-tests-only"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/o/alpha/"


def test_office_switcher_lists_every_office_of_a_multi_office_user(inbox):
    second = factories.OfficeFactory.create(slug="beta", name="Beta Office")
    factories.MembershipFactory.create(office=second, user=inbox.staff, role="staff")
    body = inbox.client_for(inbox.staff).get("/").content.decode()
    assert "/o/alpha/" in body
    assert "/o/beta/" in body


def test_reply_line_breaks_are_sent_as_lf_like_the_composer_counts_them(inbox, locmem_outbox):
    c = inbox.conversations["water"]
    inbox.client_for(inbox.staff).post(
        f"/o/alpha/conversations/{c.pk}/reply/", {"body": "Hi\r\nThanks", "token": "t9"}
    )
    assert Message.objects.get(conversation=c, direction="outbound").body == "Hi\nThanks"
