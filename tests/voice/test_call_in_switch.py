"""Call-in days from the staff side: switching a campaign on and off, the live tally partial, the per-issue
summary, and who may see and do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from offices.models import Role
from tests import factories
from tests.voice.conftest import Hotline
from voice.models import CallInCampaign, CallInPosition, CallInTally
from voice.selectors.tallies import issue_call_in_positions, issue_call_in_summaries
from voice.services.campaigns import CallInCampaignNotFound, call_in_campaign_switch

pytestmark = pytest.mark.django_db


def _campaign(office: Any, title: str, *, tag: Any = None, is_active: bool = False) -> CallInCampaign:
    return CallInCampaign.objects.create(
        office=office,
        tag=tag or factories.TagFactory.create(office=office, name=title),
        title=title,
        prompt_text=f"If you are calling about {title}, press 1 to support, 2 to oppose.",
        is_active=is_active,
    )


def _member(office: Any, role: str, **client_kwargs: Any) -> tuple[Client, Any]:
    membership: Any = factories.MembershipFactory.create(office=office, role=role)
    client = Client(**client_kwargs)
    client.force_login(membership.user)
    return client, membership.user


def _tally(campaign: CallInCampaign, phone: str, position: str, *, in_district: bool | None = None) -> None:
    constituent: Any = factories.ConstituentFactory.create(office=campaign.office, phone=phone)
    sid = "CA" + phone[-10:].rjust(32, "0")
    CallInTally.objects.create(
        office=campaign.office, campaign=campaign, constituent=constituent, caller_phone=phone,
        position=position, in_district=in_district, first_call_sid=sid, last_call_sid=sid,
    )  # fmt: skip


def _switch_url(campaign: CallInCampaign, slug: str | None = None) -> str:
    return f"/o/{slug or campaign.office.slug}/voice/call-in/{campaign.pk}/switch/"


# --- the service ----------------------------------------------------------------------------------------


def test_switching_on_records_who_and_when(office: Any, staff_user: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")
    before = timezone.now()

    result = call_in_campaign_switch(
        office=office, campaign_id=campaign.pk, is_active=True, switched_by=staff_user
    )

    campaign.refresh_from_db()
    assert (result.changed, result.switched_off) == (True, ())
    assert campaign.is_active
    assert campaign.switched_by == staff_user
    assert campaign.switched_at is not None
    assert campaign.switched_at >= before


def test_switching_one_on_switches_the_offices_other_live_campaign_off(office: Any, staff_user: Any) -> None:
    live = _campaign(office, "H.R. 1", is_active=True)
    other = _campaign(office, "H.R. 2")

    result = call_in_campaign_switch(
        office=office, campaign_id=other.pk, is_active=True, switched_by=staff_user
    )

    live.refresh_from_db()
    other.refresh_from_db()
    assert result.switched_off == ("H.R. 1",)
    assert (live.is_active, other.is_active) == (False, True)
    assert live.switched_by == staff_user


def test_switching_to_the_state_it_is_in_writes_nothing(office: Any, staff_user: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")

    result = call_in_campaign_switch(
        office=office, campaign_id=campaign.pk, is_active=False, switched_by=staff_user
    )

    campaign.refresh_from_db()
    assert result.changed is False
    assert (campaign.switched_by, campaign.switched_at) == (None, None)


def test_another_offices_campaign_cannot_be_switched(office: Any, staff_user: Any) -> None:
    theirs = _campaign(factories.OfficeFactory.create(), "Theirs")

    with pytest.raises(CallInCampaignNotFound):
        call_in_campaign_switch(office=office, campaign_id=theirs.pk, is_active=True, switched_by=staff_user)

    theirs.refresh_from_db()
    assert not theirs.is_active


def test_callers_hear_the_campaign_once_it_is_switched_on_and_not_after(
    hotline: Hotline, post_voice: Any, staff_user: Any
) -> None:
    campaign = _campaign(hotline.office, "H.R. 1234")
    assert "If you are calling about" not in post_voice("voice_call_received__basic").content.decode()

    call_in_campaign_switch(
        office=hotline.office, campaign_id=campaign.pk, is_active=True, switched_by=staff_user
    )
    assert "If you are calling about H.R. 1234" in post_voice("voice_call_received__basic").content.decode()

    call_in_campaign_switch(
        office=hotline.office, campaign_id=campaign.pk, is_active=False, switched_by=staff_user
    )
    assert "If you are calling about" not in post_voice("voice_call_received__basic").content.decode()


# --- the switch page action -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF])
def test_admin_and_staff_switch_a_campaign_on_and_off_from_the_page(office: Any, role: str) -> None:
    campaign = _campaign(office, "H.R. 1234")
    client, user = _member(office, role)

    on = client.post(_switch_url(campaign), {"active": "1"})
    campaign.refresh_from_db()
    assert on.status_code == 302
    assert on["Location"] == f"/o/{office.slug}/voice/call-in/{campaign.pk}/"
    assert (campaign.is_active, campaign.switched_by) == (True, user)
    page = client.get(on["Location"]).content.decode()
    assert "is live" in page
    assert f"Switched on by {user.get_full_name() or user.get_username()}" in page

    off = client.post(_switch_url(campaign), {"active": "0", "back_to": "list"})
    campaign.refresh_from_db()
    assert off["Location"] == f"/o/{office.slug}/voice/call-in/"
    assert not campaign.is_active


def test_officials_may_not_switch_campaigns(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")
    client, _ = _member(office, Role.OFFICIAL)

    assert client.post(_switch_url(campaign), {"active": "1"}).status_code == 403

    campaign.refresh_from_db()
    assert not campaign.is_active
    assert campaign.switched_by is None


def test_another_offices_campaign_is_a_404_and_unchanged(office: Any) -> None:
    theirs = _campaign(factories.OfficeFactory.create(slug="beta"), "Theirs")
    client, _ = _member(office, Role.ADMIN)

    assert client.post(_switch_url(theirs, slug=office.slug), {"active": "1"}).status_code == 404
    assert client.post(_switch_url(theirs), {"active": "1"}).status_code == 404  # their slug: not a member

    theirs.refresh_from_db()
    assert not theirs.is_active


def test_the_switch_takes_only_a_post_with_a_csrf_token_and_a_valid_state(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")
    client, _ = _member(office, Role.STAFF, enforce_csrf_checks=True)

    assert client.get(_switch_url(campaign)).status_code == 405
    assert client.post(_switch_url(campaign), {"active": "1"}).status_code == 403  # no CSRF token
    page = client.get(f"/o/{office.slug}/voice/call-in/{campaign.pk}/")
    token = page.context["csrf_token"]
    assert (
        client.post(_switch_url(campaign), {"active": "yes", "csrfmiddlewaretoken": token}).status_code == 400
    )
    campaign.refresh_from_db()
    assert not campaign.is_active
    assert (
        client.post(_switch_url(campaign), {"active": "1", "csrfmiddlewaretoken": token}).status_code == 302
    )
    campaign.refresh_from_db()
    assert campaign.is_active


def test_switch_buttons_show_to_staff_and_not_to_officials(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")
    staff, _ = _member(office, Role.STAFF)
    official, _ = _member(office, Role.OFFICIAL)
    action = f'action="{_switch_url(campaign)}"'

    for url in (f"/o/{office.slug}/voice/call-in/", f"/o/{office.slug}/voice/call-in/{campaign.pk}/"):
        assert action in staff.get(url).content.decode(), url
        response = official.get(url)
        assert response.status_code == 200, url
        assert action not in response.content.decode(), url


# --- the live tally -------------------------------------------------------------------------------------


def test_a_live_campaigns_page_polls_its_tally_partial_without_inline_script(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234", is_active=True)
    client, _ = _member(office, Role.OFFICIAL)
    url = f"/o/{office.slug}/voice/call-in/{campaign.pk}/"

    html = client.get(url).content.decode()

    assert f'<div id="call-in-tally" hx-get="{url}" hx-trigger="every 10s" hx-swap="outerHTML">' in html
    assert 'http-equiv="refresh"' not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # the CSP allows no inline script


def test_the_poll_gets_only_the_partial_with_the_latest_counts(
    office: Any, django_assert_max_num_queries: Any
) -> None:
    campaign = _campaign(office, "H.R. 1234", is_active=True)
    client, _ = _member(office, Role.STAFF)
    url = f"/o/{office.slug}/voice/call-in/{campaign.pk}/"
    poll = {"HX-Request": "true", "HX-Target": "call-in-tally"}
    assert "0 callers" in client.get(url, headers=poll).content.decode()
    _tally(campaign, "+14155550123", CallInPosition.SUPPORT, in_district=True)

    with django_assert_max_num_queries(6):
        response = client.get(url, headers=poll)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="call-in-tally"')
    assert "<html" not in body
    assert "1 caller (100% support)" in body
    assert "HX-Request" in response["Vary"]
    assert response["Cache-Control"] == "no-store"
    assert "HX-Request" in client.get(url)["Vary"]


def test_once_switched_off_the_partial_stops_polling(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234", is_active=False)
    client, _ = _member(office, Role.STAFF)
    url = f"/o/{office.slug}/voice/call-in/{campaign.pk}/"

    body = client.get(url, headers={"HX-Request": "true", "HX-Target": "call-in-tally"}).content.decode()

    assert '<div id="call-in-tally">' in body
    assert "hx-trigger" not in body


# --- the issue summaries --------------------------------------------------------------------------------


def test_issue_summaries_add_up_every_campaign_on_an_issue(
    office: Any, django_assert_num_queries: Any
) -> None:
    water: Any = factories.TagFactory.create(office=office, name="H.R. 1234")
    first = _campaign(office, "H.R. 1234 (March)", tag=water)
    second = _campaign(office, "H.R. 1234 (vote week)", tag=water, is_active=True)
    other = _campaign(office, "Farm bill")
    factories.TagFactory.create(office=office, name="No campaign")
    _tally(first, "+14155550121", CallInPosition.SUPPORT, in_district=True)
    _tally(first, "+14155550122", CallInPosition.OPPOSE)
    _tally(second, "+14155550123", CallInPosition.SUPPORT, in_district=True)
    _tally(other, "+14155550124", CallInPosition.OPPOSE, in_district=True)
    _campaign(factories.OfficeFactory.create(), "Elsewhere")

    with django_assert_num_queries(1):
        summaries = issue_call_in_summaries(office=office)

    assert [(s.name, s.campaigns, s.is_live) for s in summaries] == [
        ("H.R. 1234", 2, True),
        ("Farm bill", 1, False),
    ]
    issue = summaries[0]
    assert (issue.support, issue.oppose, issue.support_in_district, issue.callers) == (2, 1, 2, 3)
    assert issue.support_percent == 67
    positions = issue_call_in_positions(office=office, tag=water)
    assert (positions["support"], positions["oppose"]) == (issue.support, issue.oppose)


def test_officials_see_the_call_in_summary_page_with_the_issue_totals(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234", is_active=True)
    _tally(campaign, "+14155550121", CallInPosition.SUPPORT)
    client, _ = _member(office, Role.OFFICIAL)

    response = client.get(f"/o/{office.slug}/voice/call-in/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="issues-heading">By issue' in html
    assert "1 (100% support)" in html


def test_switching_in_the_django_admin_is_recorded_too(office: Any) -> None:
    campaign = _campaign(office, "H.R. 1234")
    admin: Any = factories.MembershipFactory.create(office=office, role=Role.ADMIN, user__is_staff=True)
    client = Client()
    client.force_login(admin.user)
    form = {
        "office": str(office.pk),
        "title": campaign.title,
        "tag": str(campaign.tag_id),
        "prompt_text": campaign.prompt_text,
        "thanks_text": campaign.thanks_text,
    }
    url = f"/admin/civicdesk_messages/callincampaign/{campaign.pk}/change/"

    assert client.post(url, {**form, "title": "Renamed"}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.switched_by is None  # not switched: nothing to record
    assert client.post(url, {**form, "is_active": "on"}).status_code == 302

    campaign.refresh_from_db()
    assert campaign.is_active
    assert campaign.switched_by == admin.user
    assert campaign.switched_at is not None
