"""'Act on all N matching' in real Chromium: asked first with N, confirmed by keyboard, undone by keyboard;
the same without JavaScript; a search with nothing to search for shows nothing; axe-core on the new pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from messages.models import BulkAction, Conversation, ConversationStatus
from tests.browser.conftest import run_axe
from tests.messages.inbox.conftest import add_conversation

pytestmark = pytest.mark.browser

OPEN_ONES = ("water", "rent", "voicemail", "optout")


def statuses(world: Any, names: tuple[str, ...] = OPEN_ONES) -> set[str]:
    pks = [world.conversations[n].pk for n in names]
    return set(Conversation.objects.filter(pk__in=pks).values_list("status", flat=True))


def test_bulk_close_of_everything_matching_is_confirmed_and_undone_by_keyboard(
    world, new_page, browser_errors
):
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    page.get_by_label(re.compile("matching this filter")).check()
    expect(page.locator("#match-count")).to_have_text("4 conversations")
    with page.expect_navigation():
        page.locator("#bulk-close").click()

    # The confirmation page: the number, the filter, and the focus on the button that acts.
    assert page.get_by_role("heading", level=1).inner_text() == "Close 4 conversations?"
    assert "This filter matches 4 conversations now." in page.locator("#confirm-count").inner_text()
    assert "Open or pending" in page.get_by_label("The filter").inner_text()
    assert statuses(world) == {"open"}  # nothing yet
    assert page.evaluate("document.activeElement.id") == "confirm-bulk"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/o/alpha/$"))
    assert "4 conversations closed." in page.locator("#flash").inner_text()
    assert statuses(world) == {"closed"}

    # Undo, from the keyboard: the button is reachable with Tab.
    undo = page.get_by_role("button", name="Undo: reopen 4 conversations")
    assert undo.is_visible()
    page.locator("#main").focus()
    for _ in range(40):  # past the rail and the search form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "bulk-undo-button":
            break
    assert page.evaluate("document.activeElement.id") == "bulk-undo-button"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "4 conversations reopened." in page.locator("#flash").inner_text()
    assert page.get_by_role("button", name=re.compile("^Undo")).count() == 0
    assert statuses(world) == {"open"}
    assert BulkAction.objects.get().undone_by_id == world.staff.pk
    assert browser_errors == []


def test_a_changed_count_is_said_before_anything_changes(world, new_page, browser_errors):
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    page.get_by_label(re.compile("matching this filter")).check()
    expect(page.locator("#match-count")).to_have_text("4 conversations")
    with page.expect_navigation():
        page.locator("#bulk-close").click()
    add_conversation(world.office, name="New Comer", phone="+12025550180", body="hello", minutes_ago=1)
    with page.expect_navigation():
        page.get_by_role("button", name="Close 4 conversations").click()
    assert "and matches 5 conversations now" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == "Close 5 conversations?"
    assert statuses(world) == {"open"}
    with page.expect_navigation():
        page.get_by_role("button", name="Close 5 conversations").click()
    assert "5 conversations closed." in page.locator("#flash").inner_text()
    assert browser_errors == []


def test_the_confirmation_and_undo_work_without_javascript(world, browser, live_server):
    from django.test import Client

    client = Client()
    client.force_login(world.staff)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto("/o/alpha/?assignee=none")
        page.get_by_label(re.compile("matching this filter")).check()
        with page.expect_navigation():
            page.locator("#bulk-close").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Close 2 conversations?"
        with page.expect_navigation():
            page.get_by_role("button", name="Close 2 conversations").click()
        assert "2 conversations closed." in page.locator("#flash").inner_text()
        assert statuses(world, ("water", "voicemail")) == {"closed"}
        assert statuses(world, ("rent", "optout")) == {"open"}
        with page.expect_navigation():
            page.get_by_role("button", name="Undo: reopen 2 conversations").click()
        assert "2 conversations reopened." in page.locator("#flash").inner_text()
        assert statuses(world, ("water", "voicemail")) == {"open"}

        # Cancel changes nothing.
        page.goto("/o/alpha/")
        page.get_by_label(re.compile("matching this filter")).check()
        with page.expect_navigation():
            page.locator("#bulk-close").click()
        with page.expect_navigation():
            page.get_by_role("link", name="Cancel, change nothing").click()
        assert statuses(world) == {ConversationStatus.OPEN}
    finally:
        context.close()


def test_a_search_with_nothing_to_search_for_shows_nothing_and_says_why(world, new_page, browser_errors):
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    page.get_by_label("Search messages, voicemail transcripts, names and phone numbers").fill("%")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(re.compile(r"q=%25"))
    assert page.locator("tr.row").count() == 0
    assert (
        page.locator("#search-notice").inner_text()
        == "“%” has no words to search for. Showing no conversations."
    )
    assert (
        page.get_by_label("Search messages, voicemail transcripts, names and phone numbers").input_value()
        == "%"
    )
    add_conversation(
        world.office, name="Ana Ortiz", phone="+12025550177", body="Thank you 🙏🏽", minutes_ago=50
    )
    page.goto("/o/alpha/?q=🙏🏽")
    assert page.locator("tr.row").count() == 1
    assert page.locator("tr.row mark").first.inner_text() == "🙏🏽"
    assert browser_errors == []


def test_axe_on_the_confirmation_the_undo_bar_and_the_search_notice(world, new_page):
    page = new_page(world.staff, bypass_csp=True)  # axe is injected as an inline script
    page.goto("/o/alpha/")
    page.get_by_label(re.compile("matching this filter")).check()
    with page.expect_navigation():
        page.locator("#bulk-close").click()
    assert run_axe(page) == []
    with page.expect_navigation():
        page.locator("#confirm-bulk").click()
    assert page.locator("#bulk-undo").is_visible()
    assert run_axe(page) == []
    page.goto("/o/alpha/?q=%25")
    assert page.locator("#search-notice").is_visible()
    assert run_axe(page) == []
