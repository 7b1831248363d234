"""Configuring the IVR and call-in campaigns in the admin: validation, scoping to the admin's offices."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from offices.models import IvrAction, IvrMenu, IvrOption
from tests import factories
from tests.voice.conftest import Hotline
from voice.models import CallInCampaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(hotline: Hotline) -> Client:
    admin: Any = factories.MembershipFactory.create(office=hotline.office, role="admin", user__is_staff=True)
    client = Client()
    client.force_login(admin.user)
    return client


def _menu_form(hotline: Hotline, **overrides: str) -> dict[str, str]:
    data = {
        "office": str(hotline.office.pk),
        "name": "Weekend",
        "language": "en-US",
        "voice": "Polly.Joanna",
        "greeting_text": "Hello.",
        "voicemail_prompt": "After the beep.",
        "staff_unavailable_text": "Nobody.",
        "invalid_input_text": "Sorry.",
        "goodbye_text": "Bye.",
        "speech_enabled": "on",
        "gather_timeout_seconds": "6",
        "max_attempts": "3",
        "dial_numbers": "",
        "dial_timeout_seconds": "20",
        "options-TOTAL_FORMS": "1",
        "options-INITIAL_FORMS": "0",
        "options-MIN_NUM_FORMS": "0",
        "options-MAX_NUM_FORMS": "1000",
        "options-0-digit": "1",
        "options-0-action": "voicemail",
        "options-0-prompt": "Press 1.",
        "options-0-topic": "Health care",
        "options-0-queue_name": "Casework",
    }
    data.update(overrides)
    return data


def test_admin_creates_a_menu_with_options(admin_client: Client, hotline: Hotline) -> None:
    response = admin_client.post("/admin/offices/ivrmenu/add/", _menu_form(hotline))
    assert response.status_code == 302, response.content.decode()[:2000]
    menu = IvrMenu.objects.get(name="Weekend")
    assert menu.options.get().topic == "Health care"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"options-0-topic": "Potholes"}, "This office has no tag named “Potholes”"),
        ({"options-0-queue_name": "Nope"}, "This office has no queue named “Nope”"),
        (
            {"options-0-action": "staff", "options-0-topic": "", "options-0-queue_name": ""},
            "Add staff numbers",
        ),
        ({"dial_numbers": "+14155550100"}, "is this office&#x27;s own hotline number"),
        ({"dial_numbers": "555-1234"}, "E.164"),
        ({"greeting_text": ""}, "Give a greeting text, or upload greeting audio."),
        ({"voice": "Robot9000"}, "Use a Twilio voice"),
        ({"gather_timeout_seconds": "99"}, "less than or equal to 20"),
        ({"options-0-action": "repeat"}, "Only voicemail options set a topic or queue."),
    ],
)
def test_admin_rejects_invalid_menus(
    overrides: dict[str, str], error: str, admin_client: Client, hotline: Hotline
) -> None:
    response = admin_client.post("/admin/offices/ivrmenu/add/", _menu_form(hotline, **overrides))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not IvrMenu.objects.filter(name="Weekend").exists()


def test_language_option_must_target_another_menu_of_the_same_office(hotline: Hotline) -> None:
    their_office: Any = factories.OfficeFactory.create()
    other = IvrMenu.objects.create(office=their_office, name="Theirs", greeting_text="Hi")
    option = IvrOption(menu=hotline.main, digit="8", action=IvrAction.LANGUAGE, prompt="x", target_menu=other)
    with pytest.raises(ValidationError, match="same office"):
        option.full_clean()
    option.target_menu = hotline.main
    with pytest.raises(ValidationError, match="same office"):
        option.full_clean()


def test_campaign_tag_must_belong_to_the_office(admin_client: Client, hotline: Hotline) -> None:
    foreign_tag: Any = factories.TagFactory.create(office=factories.OfficeFactory.create())
    data = {
        "office": str(hotline.office.pk),
        "title": "H.R. 1",
        "tag": str(foreign_tag.pk),
        "prompt_text": "Press 1.",
        "thanks_text": "Thanks.",
        "is_active": "on",
    }
    response = admin_client.post("/admin/civicdesk_messages/callincampaign/add/", data)
    assert response.status_code == 200
    assert not CallInCampaign.objects.exists()
    data["tag"] = str(hotline.tag.pk)
    assert admin_client.post("/admin/civicdesk_messages/callincampaign/add/", data).status_code == 302
    response = admin_client.post("/admin/civicdesk_messages/callincampaign/add/", {**data, "title": "H.R. 2"})
    assert response.status_code == 200
    assert CallInCampaign.objects.count() == 1


def test_admin_of_another_office_cannot_see_or_pick_this_offices_menus(hotline: Hotline) -> None:
    stranger: Any = factories.MembershipFactory.create(role="admin", user__is_staff=True)
    outsider = Client()
    outsider.force_login(stranger.user)
    assert "Main" not in outsider.get("/admin/offices/ivrmenu/").content.decode()
    response = outsider.get(f"/admin/offices/ivrmenu/{hotline.main.pk}/change/", follow=True)
    assert "Thank you for calling the office of Representative Rivera" not in response.content.decode()
    assert outsider.get("/admin/civicdesk_messages/parkedvoicecallback/").status_code == 403
