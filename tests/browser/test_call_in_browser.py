"""Call-in days in real Chromium: found from the navigation, switched on by staff, the tally updating live
under the CSP, and axe-core on the pages."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.conftest import run_axe
from voice.models import CallInCampaign, CallInPosition, CallInTally

pytestmark = pytest.mark.browser


@pytest.fixture
def campaign(world):
    issue = factories.TagFactory.create(office=world.office, name="H.R. 1234", color="#b3186b")
    return CallInCampaign.objects.create(
        office=world.office,
        tag=issue,
        title="H.R. 1234",
        prompt_text="If you are calling about H.R. 1234, press 1 to support it or 2 to oppose it.",
    )


def test_staff_switch_a_call_in_day_on_and_watch_the_tally_live(
    world, campaign, new_page, browser_errors, monkeypatch
):
    monkeypatch.setattr("voice.views.TALLY_REFRESH_SECONDS", 1)
    page = new_page(world.staff)
    page.goto("/o/alpha/")

    page.get_by_role("navigation", name="Office").get_by_role("link", name="Call-in tallies").click()
    page.get_by_role("button", name="Switch on the call-in menu for H.R. 1234").click()
    page.wait_for_selector("#flash:has-text('is live')")
    page.get_by_role("link", name="H.R. 1234").click()
    assert "0 callers" in page.locator("#call-in-tally").inner_text()

    constituent = factories.ConstituentFactory.create(office=world.office, phone="+14155550123")
    CallInTally.objects.create(
        office=world.office, campaign=campaign, constituent=constituent, caller_phone=constituent.phone,
        position=CallInPosition.SUPPORT, first_call_sid="CA" + "1" * 32, last_call_sid="CA" + "1" * 32,
    )  # fmt: skip

    page.wait_for_selector("#call-in-tally:has-text('1 caller (100% support)')", timeout=10_000)
    campaign.refresh_from_db()
    assert campaign.is_active
    assert campaign.switched_by == world.staff
    assert browser_errors == []


@pytest.mark.parametrize("who", ["staff", "official"])
def test_axe_finds_no_serious_or_critical_violations_on_the_call_in_pages(world, campaign, new_page, who):
    page = new_page(getattr(world, who), bypass_csp=True)  # axe is injected as an inline script
    for url in ("/o/alpha/voice/call-in/", f"/o/alpha/voice/call-in/{campaign.pk}/"):
        page.goto(url)
        violations = run_axe(page)
        assert violations == [], (url, violations)
