"""A bulk reply in real Chromium: two conversations picked in the inbox, previewed, sent, and followed on the
progress page, which htmx refreshes until it says Done; axe-core on the letter and bulk-reply pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from correspondence.models import BulkReply, BulkStatus, FormLetter
from correspondence.services import bulk, letters, sending
from messages.models import Direction, Message
from offices.models import Membership, OfficePhoneNumber
from tests.browser.conftest import run_axe

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")  # noqa: S108  # screenshots for a person to look at, outside the repository
LETTER_BODY = "Dear {first_name|neighbor}, thank you for writing to {official_name}."
# A Tuesday at noon in New York, morning in California: outside everyone's quiet hours.
MIDDAY = datetime(2027, 1, 12, 17, 0, tzinfo=UTC)


def approved_letter(world: Any) -> FormLetter:
    """An approved form letter of the world's office, and its number fast enough to send both at once."""
    admin = Membership.objects.get(office=world.office, user=world.admin)
    letter = letters.letter_create(
        office=world.office, actor=world.staff, name="Clean water", body=LETTER_BODY
    )
    letters.letter_approve(office=world.office, membership=admin, pk=letter.pk)
    OfficePhoneNumber.objects.filter(office=world.office).update(send_rate=100)
    letter.refresh_from_db()
    return letter


def send_everything(bulk_reply_id: int) -> None:
    """What the workers do, in this thread: prepare the rows, send every due text, mark the reply done."""
    bulk.bulk_reply_prepare(bulk_reply_id=bulk_reply_id)
    for _ in range(10):
        report = sending.bulk_reply_send_slice(
            bulk_reply_id=bulk_reply_id, slot=0, seconds=5, wall=lambda: MIDDAY
        )
        if report.stopped == "nothing due":
            break
    assert sending.bulk_reply_finish_if_done(bulk_reply_id=bulk_reply_id)


def test_reply_to_two_conversations_with_a_form_letter_and_watch_it_finish(
    world, new_page, browser_errors, locmem_outbox
):
    approved_letter(world)
    water, rent = world.conversations["water"], world.conversations["rent"]
    page = new_page(world.staff)
    page.goto("/o/alpha/")
    for conversation in (water, rent):
        page.locator(f"tr.row[data-id='{conversation.pk}']").get_by_role("checkbox").check()
    assert page.locator("#selection-count").inner_text() == "2 conversations selected."
    bulk_bar = page.get_by_role("form", name="Bulk actions")
    with page.expect_navigation():
        bulk_bar.locator("#bulk-reply").click()

    # The preview: how many, and what each gets, before anything is sent.
    page.wait_for_url(re.compile(r"/o/alpha/bulk-replies/\d+/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Bulk reply preview"
    assert page.locator("#recipient-count").inner_text() == "2"
    assert "$0.02 at the default price per segment" in page.locator(".bulk-summary").inner_text()
    samples = page.locator("article.sample blockquote").all_inner_texts()
    assert sorted(samples) == [
        "Dear Pat, thank you for writing to Jordan Rivera.",
        "Dear Sam, thank you for writing to Jordan Rivera.",
    ]
    draft = BulkReply.objects.get(office=world.office)
    assert draft.status == BulkStatus.DRAFT
    assert not Message.objects.filter(office=world.office, direction=Direction.OUTBOUND).exists()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "bulk-reply-preview.png"), full_page=True)

    send = page.locator("#send-bulk-reply")
    assert send.inner_text() == "Send to 2 recipients"
    with page.expect_navigation():
        send.click()

    # The progress page, polling while the workers (here: this thread) send.
    progress = page.locator("#bulk-progress")
    expect(progress).to_be_visible()
    expect(page.locator("#bulk-status")).to_have_text("Sending")
    page.evaluate("window.__loadedOnce = true")  # survives htmx swaps, not a reload
    send_everything(draft.pk)
    expect(page.locator("#bulk-status")).to_have_text("Done", timeout=15_000)
    assert page.evaluate("window.__loadedOnce") is True
    expect(progress).to_contain_text("2 of 2 finished")
    page.screenshot(path=str(SHOTS / "bulk-reply-progress.png"), full_page=True)

    sent = Message.objects.filter(office=world.office, direction=Direction.OUTBOUND)
    assert sorted(m.conversation_id for m in sent) == sorted([water.pk, rent.pk])
    assert len(locmem_outbox) == 2
    assert browser_errors == []


def test_axe_on_the_letters_a_letter_the_preview_and_the_progress_page(world, new_page):
    letter = approved_letter(world)
    audience = bulk.Audience(conversations=(world.conversations["water"].pk, world.conversations["rent"].pk))
    draft = bulk.bulk_reply_create(
        office=world.office, actor=world.staff, audience=audience, letter_id=letter.pk
    )
    started = bulk.bulk_reply_create(
        office=world.office, actor=world.staff, audience=audience, letter_id=letter.pk, start=True
    )
    page = new_page(world.staff, bypass_csp=True)  # axe is injected as an inline script
    for url, heading in (
        ("/o/alpha/letters/", "Form letters"),
        (f"/o/alpha/letters/{letter.pk}/", "Clean water"),
        (f"/o/alpha/bulk-replies/{draft.pk}/", "Bulk reply preview"),
        (f"/o/alpha/bulk-replies/{started.pk}/", f"Bulk reply #{started.pk}"),
    ):
        page.goto(url)
        assert page.get_by_role("heading", level=1).inner_text() == heading
        assert run_axe(page) == [], url
