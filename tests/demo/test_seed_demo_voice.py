"""The demo's voice hotline: seeded complete and valid, once, and never overwritten by a later seed."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import call_command

from demo.seed import DEMO_OFFICE_SLUG
from demo.seed_voice import CALL_IN_TITLE, DEMO_STAFF_NUMBERS
from messages.models import Tag, TriageQueue
from offices.models import IvrAction, IvrMenu, IvrOption, Office, OfficeHours, OfficePhoneNumber
from voice.models import CallInCampaign
from voice.services.campaigns import call_in_campaign_switch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def demo_mode(settings: Any) -> None:
    settings.DEMO_MODE = True


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def voice_rows(office: Office) -> str:
    rows = [
        *IvrMenu.objects.filter(office=office).order_by("pk"),
        *IvrOption.objects.filter(menu__office=office).order_by("pk"),
        *CallInCampaign.objects.filter(office=office).order_by("pk"),
    ]
    dump: str = serializers.serialize("json", rows)
    return dump


def test_the_demo_hotline_has_every_branch_and_passes_the_admins_checks() -> None:
    seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    menus = {menu.name: menu for menu in IvrMenu.objects.filter(office=office)}
    main = IvrMenu.objects.get(office=office, is_main=True)
    spanish = next(menu for menu in menus.values() if menu.language == "es-US")

    assert len(menus) == 2
    assert main.greeting_text
    assert main.after_hours_text
    assert main.info_text
    assert main.dial_numbers == DEMO_STAFF_NUMBERS
    assert {option.action for option in main.options.all()} == set(IvrAction.values)
    assert main.options.get(action=IvrAction.LANGUAGE).target_menu == spanish
    assert spanish.options.get(action=IvrAction.LANGUAGE).target_menu == main
    assert {o.action for o in spanish.options.all()} == set(IvrAction.values)
    assert OfficePhoneNumber.objects.get(office=office, e164="+14155550100").voice_enabled
    assert OfficeHours.objects.filter(office=office).count() == 5
    own_numbers = set(OfficePhoneNumber.objects.filter(office=office).values_list("e164", flat=True))
    assert not own_numbers & set(DEMO_STAFF_NUMBERS)  # "talk to staff" must not ring the hotline itself
    for menu in menus.values():
        menu.full_clean()
        for option in menu.options.all():
            option.full_clean()
            # The admin's formset rule: a voicemail option names an existing tag and queue of the office.
            if option.topic:
                assert Tag.objects.filter(office=office, name__iexact=option.topic).exists(), option
            if option.queue_name:
                assert TriageQueue.objects.filter(office=office, name__iexact=option.queue_name).exists()
    voicemail_topics = {o.topic for o in main.options.filter(action=IvrAction.VOICEMAIL) if o.topic}
    assert "Health care" in voicemail_topics
    campaign = CallInCampaign.objects.get(office=office)
    assert (campaign.title, campaign.tag.name, campaign.is_active) == (CALL_IN_TITLE, "H.R. 1234", False)
    for choice in ("press 1 if you support", "2 if you oppose", "3 to leave a message"):
        assert choice in campaign.prompt_text
    campaign.full_clean()


def test_a_second_seed_keeps_an_edited_ivr_and_a_live_campaign_as_they_are() -> None:
    seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    campaign = CallInCampaign.objects.get(office=office)
    staff = get_user_model().objects.get(username="staff")
    call_in_campaign_switch(office=office, campaign_id=campaign.pk, is_active=True, switched_by=staff)
    IvrMenu.objects.filter(office=office, is_main=True).update(greeting_text="Edited by an admin.")
    before = voice_rows(office)

    output = seed()

    assert "nothing to do" in output
    assert voice_rows(office) == before


def test_a_demo_seeded_before_the_hotline_gains_it_once() -> None:
    seed()
    office = Office.objects.get(slug=DEMO_OFFICE_SLUG)
    fresh = voice_rows(office).count('"model"')
    CallInCampaign.objects.filter(office=office).delete()
    IvrOption.objects.filter(menu__office=office).delete()
    IvrMenu.objects.filter(office=office).delete()

    added = seed()
    after = voice_rows(office)
    again = seed()

    assert "already exists; added 2 IVR menus, 14 IVR options, 1 call-in campaigns." in added
    assert after.count('"model"') == fresh
    assert "nothing to do" in again
    assert voice_rows(office) == after
