"""The staff inbox in real Chromium: triage by mouse and by keyboard, live updates, XSS, axe-core."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from messages.models import Conversation, ConversationStatus, Message
from messages.segments import segment_info
from messages.services.canned import canned_response_create
from tests import factories
from tests.browser.conftest import run_axe
from tests.redis_cache import PrivateCache

pytestmark = pytest.mark.browser

XSS_BODY = (
    '<script>window.__xss = "script"</script><img src=x onerror="window.__xss = \'img\'">'
    "<svg onload=\"window.__xss = 'svg'\"></svg>\"'><b onmouseover=alert(1)>hover</b> water"
)


def row(page: Any, conversation: Any) -> Any:
    return page.locator(f"tr.row[data-id='{conversation.pk}']")


def test_log_in_filter_open_reply_tag_and_bulk_close(world, new_page, browser_errors, live_server):
    page = new_page()
    page.goto("/o/alpha/")
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/o/alpha/$"))

    # Filter: the Housing tag from the rail, then a search.
    page.get_by_role("navigation", name="Inbox views").get_by_role(
        "link", name=re.compile("^Housing")
    ).click()
    page.wait_for_url(re.compile(r"tag="))
    assert page.locator("tr.row").count() == 1
    page.get_by_role("link", name=re.compile("^All open")).click()
    page.get_by_label("Search messages, voicemail transcripts, names and phone numbers").fill("medicare")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"q=medicare"))
    assert page.locator("tr.row").count() == 1
    assert page.locator("tr.row mark").first.inner_text().lower() == "medicare"

    # Open the conversation and reply; the segment counter follows the text.
    page.get_by_role("link", name="Dana Cruz").click()
    page.wait_for_url(re.compile(r"/conversations/\d+/$"))
    composer = page.get_by_label("Reply to Dana Cruz by text")
    composer.fill("We are on it — expect a call this week.")
    assert "1 segment (UCS-2)" in page.locator("#segment-counter").inner_text()
    with page.expect_navigation():
        page.get_by_role("button", name="Send text").click()
    assert "Reply queued (1 segment)." in page.locator("#flash").inner_text()
    voicemail = world.conversations["voicemail"]
    assert Message.objects.filter(conversation=voicemail, direction="outbound").count() == 1

    # Tag it.
    page.get_by_label("Add tag").select_option(label="Health care")
    with page.expect_navigation():
        page.get_by_role("button", name="Add", exact=True).click()
    assert "Tagged “Health care”." in page.locator("#flash").inner_text()
    assert voicemail.tags.filter(name="Health care").exists()
    assert "tagged it “Health care”" in page.locator("#timeline").inner_text()

    # Bulk-close two conversations from the list.
    page.goto("/o/alpha/")
    row(page, world.conversations["water"]).get_by_role("checkbox").check()
    row(page, world.conversations["rent"]).get_by_role("checkbox").check()
    assert page.locator("#selection-count").inner_text() == "2 conversations selected."
    with page.expect_navigation():
        page.locator("#bulk-close").click()
    assert "2 conversations closed." in page.locator("#flash").inner_text()
    assert set(
        Conversation.objects.filter(
            pk__in=[world.conversations[n].pk for n in ("water", "rent")]
        ).values_list("status", flat=True)
    ) == {"closed"}
    assert browser_errors == []


def test_keyboard_only_triage(world, new_page, browser_errors):
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    keyboard = page.keyboard

    keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    assert "Go to the inbox" in page.locator("#shortcuts").inner_text()
    keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()

    keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == "Pat Rivera"
    keyboard.press("j")
    keyboard.press("k")
    keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == "Sam Lee"
    keyboard.press("x")
    keyboard.press("j")
    keyboard.press("x")
    assert page.locator("#selection-count").inner_text() == "2 conversations selected."
    with page.expect_navigation():
        keyboard.press("e")  # closes the selection
    assert "2 conversations closed." in page.locator("#flash").inner_text()
    assert Conversation.objects.get(pk=world.conversations["rent"].pk).status == ConversationStatus.CLOSED
    assert (
        Conversation.objects.get(pk=world.conversations["voicemail"].pk).status == ConversationStatus.CLOSED
    )

    # Tag the current conversation: t jumps to the tag picker with the current row selected.
    keyboard.press("j")  # Pat
    keyboard.press("t")
    assert page.evaluate("document.activeElement.id") == "bulk-tag"
    page.locator("#bulk-tag").select_option(label="Housing")
    keyboard.press("Tab")
    with page.expect_navigation():
        keyboard.press("Enter")  # "Add tag"
    assert "1 conversation tagged “Housing”." in page.locator("#flash").inner_text()

    # Assign: a jumps to the assignee picker.
    keyboard.press("j")
    keyboard.press("a")
    assert page.evaluate("document.activeElement.id") == "bulk-assignee"
    page.locator("#bulk-assignee").select_option(label="Me")
    keyboard.press("Tab")
    with page.expect_navigation():
        keyboard.press("Enter")
    assert "assigned to alice" in page.locator("#flash").inner_text()

    # Search with /, then r replies to the current conversation.
    keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    keyboard.type("water")
    keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=water"))
    keyboard.press("j")
    keyboard.press("r")
    page.wait_for_url(re.compile(r"/conversations/\d+/#reply$"))
    assert page.evaluate("document.activeElement.id") == "reply-body"
    keyboard.type("Thanks!")
    keyboard.press("Escape")
    keyboard.press("e")  # close from the conversation page; back to the inbox
    page.wait_for_url(re.compile(r"/o/alpha/$"))
    assert "Conversation closed." in page.locator("#flash").inner_text()
    assert Conversation.objects.get(pk=world.conversations["water"].pk).status == ConversationStatus.CLOSED

    # g i goes to the inbox from anywhere.
    page.goto(f"/o/alpha/conversations/{world.conversations['optout'].pk}/")
    keyboard.press("g")
    keyboard.press("i")
    page.wait_for_url(re.compile(r"/o/alpha/$"))
    assert browser_errors == []


def test_stored_xss_in_a_message_body_does_not_execute(world, new_page, browser_errors):
    c = world.conversations["water"]
    factories.MessageFactory.create(conversation=c, body=XSS_BODY, created_at=timezone.now())
    Conversation.objects.filter(pk=c.pk).update(
        last_message_preview=XSS_BODY[:160], last_activity_at=timezone.now()
    )
    c.constituent.first_name = "<img src=x onerror=\"window.__xss='name'\">"
    c.constituent.save()
    page = new_page(world.staff)
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    for url in ("/o/alpha/", "/o/alpha/?q=water", f"/o/alpha/conversations/{c.pk}/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.locator("body").hover()
        assert page.evaluate("window.__xss") is None, url
        assert page.locator("script:not([src])").count() == 0, url
    assert "<script>window.__xss" in page.locator("#timeline").inner_text()  # shown as text
    assert dialogs == []
    assert browser_errors == [] or all("Content Security Policy" not in e for e in browser_errors)


@pytest.mark.parametrize("who", ["staff", "official"])
def test_axe_finds_no_serious_or_critical_violations(world, new_page, who):
    canned_response_create(office=world.office, title="Thanks", body="Thanks {first_name}!")
    c = world.conversations["rent"]
    factories.MessageFactory.create(
        conversation=c, direction="outbound", body="We will look into it.", status="delivered",
        sent_by=world.staff, created_at=timezone.now(),
    )  # fmt: skip
    page = new_page(getattr(world, who), bypass_csp=True)  # axe is injected as an inline script
    for url in ("/o/alpha/", "/o/alpha/?q=rent", f"/o/alpha/conversations/{c.pk}/"):
        page.goto(url)
        page.locator("details").evaluate_all("els => els.forEach(d => d.open = true)")
        violations = run_axe(page)
        assert violations == [], (url, violations)
    page.keyboard.press("?")
    assert run_axe(page) == []


def test_the_live_server_keeps_rail_counts_and_who_is_replying_in_redis(
    world: Any, new_page: Any, private_cache: PrivateCache
) -> None:
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    assert private_cache.exists(f"inbox-rail:{world.office.pk}:0")
    c = world.conversations["rent"]
    page.goto(f"/o/alpha/conversations/{c.pk}/")
    with page.expect_response(lambda r: r.url.endswith("/presence/") and r.status == 204):
        page.get_by_label("Reply to Sam Lee by text").type("Hi Sam")
    assert private_cache.exists(f"replying:{world.office.pk}:{c.pk}")


def test_live_updates_new_messages_and_someone_replying(world, new_page, browser_errors):
    staff_page = new_page(world.staff)
    staff_page.goto("/o/alpha/")
    assert staff_page.locator("tr.row").first.get_attribute("data-id") == str(world.conversations["water"].pk)

    # A new text arrives on an older conversation: it moves to the top, unread, with no reload.
    jo = world.conversations["optout"]
    now = timezone.now()
    factories.MessageFactory.create(conversation=jo, body="START", created_at=now)
    Conversation.objects.filter(pk=jo.pk).update(
        last_activity_at=now, last_inbound_at=now, last_message_preview="START"
    )
    staff_page.wait_for_selector(f"tbody tr.row:first-child[data-id='{jo.pk}']", timeout=10_000)
    assert "unread" in staff_page.locator("tr.row").first.get_attribute("class")

    # Two people on one conversation: Bob types, Alice sees the notice; a new message shows up in place.
    c = world.conversations["rent"]
    staff_page.goto(f"/o/alpha/conversations/{c.pk}/")
    bob_page = new_page(world.other_staff)
    bob_page.goto(f"/o/alpha/conversations/{c.pk}/")
    bob_page.get_by_label("Reply to Sam Lee by text").type("Hi Sam")
    staff_page.wait_for_selector("#presence:has-text('bob is replying')", timeout=10_000)
    factories.MessageFactory.create(
        conversation=c, body="Also, the heating is broken.", created_at=timezone.now()
    )
    staff_page.wait_for_selector("#timeline li.new:has-text('heating is broken')", timeout=10_000)
    # A status change by someone else updates the triage panel.
    from messages.services import triage

    triage.conversation_snooze(
        conversation=c, until=timezone.now() + timedelta(days=1), actor=world.other_staff
    )
    staff_page.wait_for_selector("#conversation-state .badge-snoozed", timeout=10_000)
    assert "bob" in staff_page.locator("#timeline").inner_text()
    assert browser_errors == []


def test_canned_response_and_segment_counter_agree_with_the_server(world, new_page):
    canned_response_create(
        office=world.office, title="Thanks", body="Thanks {first_name}, from {official_name}."
    )
    page = new_page(world.staff)
    page.goto(f"/o/alpha/conversations/{world.conversations['water'].pk}/")
    page.get_by_label("Canned response").select_option(label="Thanks")
    assert page.get_by_label("Reply to Pat Rivera by text").input_value() == "Thanks Pat, from Jordan Rivera."
    samples = [
        "",
        "Hello",
        "a" * 160,
        "a" * 161,
        "€" * 80,
        "{" * 81,
        "“smart quotes”",
        "😀" * 35,
        "😀" * 36,
        "a" * 152 + "€",
        "é" * 70 + "\n" * 5,
        "x" * 1600,
    ]
    for text in samples:
        js = page.evaluate("t => window.civicdeskSegments.segmentInfo(t)", text)
        py = segment_info(text)
        assert (js["encoding"], js["characters"], js["segments"], js["remaining"]) == (
            py.encoding,
            py.characters,
            py.segments,
            py.remaining_in_segment,
        ), text


def test_opted_out_constituent_cannot_be_texted_in_the_browser(world, new_page):
    page = new_page(world.staff)
    page.goto(f"/o/alpha/conversations/{world.conversations['optout'].pk}/")
    assert page.get_by_role("alert").filter(has_text="Texting is blocked").is_visible()
    assert page.locator("#reply-body").count() == 0
    page.keyboard.press("r")  # r falls back to the internal note
    assert page.evaluate("document.activeElement.id") == "note-body"


def test_official_is_read_only_in_the_browser(world, new_page):
    page = new_page(world.official)
    page.goto("/o/alpha/")
    assert page.locator("#bulk-form").count() == 0
    page.keyboard.press("j")
    page.keyboard.press("e")  # nothing to submit
    page.get_by_role("link", name="Pat Rivera").click()
    assert page.get_by_text("You have read-only access").is_visible()
    assert page.locator("form[action$='/triage/']").count() == 0


def test_the_row_preview_shows_the_constituents_text_not_the_acknowledgement(
    world, new_page, browser_errors, monkeypatch
):
    from messages.services.processing import inbound_process

    monkeypatch.setattr("common.queueing.enqueue", lambda task, *args, countdown=None: task(*args) or True)
    world.office.sms_auto_ack_text = "Thanks for contacting the office of Jordan Rivera."
    world.office.save()
    c = world.conversations["water"]
    inbound = Message.objects.get(conversation=c, direction="inbound")
    Message.objects.filter(pk=inbound.pk).update(processed_at=None)
    assert inbound_process(message_id=inbound.pk)  # the acknowledgement is queued and sent
    assert Message.objects.filter(conversation=c, direction="outbound", sent_by=None).count() == 1

    page = new_page(world.staff)
    page.goto("/o/alpha/")
    assert row(page, c).locator(".preview").inner_text() == "Please support the clean water bill."

    # A staff reply is what the row shows next.
    page.goto(f"/o/alpha/conversations/{c.pk}/")
    page.get_by_label("Reply to Pat Rivera by text").fill("We will pass that on to Jordan.")
    with page.expect_navigation():
        page.get_by_role("button", name="Send text").click()
    page.goto("/o/alpha/")
    assert row(page, c).locator(".preview").inner_text() == "We will pass that on to Jordan."
    assert browser_errors == []
