"""The per-process cache of an office's voice configuration: fewer queries per call, bounded staleness."""

from __future__ import annotations

from typing import Any

import pytest

from offices.models import OfficeHours
from tests.voice.conftest import Hotline
from voice.services.config import voice_config, voice_config_clear

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings: Any) -> Any:
    settings.VOICE_CONFIG_CACHE_SECONDS = 60
    voice_config_clear()
    yield settings
    voice_config_clear()


def test_configuration_is_read_once_then_served_from_memory(
    cached: Any, hotline: Hotline, django_assert_num_queries: Any
) -> None:
    # menus, options, campaign, hours, holidays, the topics' tags and queues, the numbers that take calls
    with django_assert_num_queries(8):
        first = voice_config(office=hotline.office)
    with django_assert_num_queries(0):
        again = voice_config(office=hotline.office)
    assert again is first
    assert first.main == hotline.main
    assert set(first.menus) == {hotline.main.pk, hotline.spanish.pk}
    assert first.options[hotline.health_option.pk].topic == "Health care"
    assert first.tags["health care"] == hotline.tag
    assert first.queues["casework"] == hotline.queue


def test_a_cached_call_costs_fewer_queries(
    cached: Any, post_voice: Any, django_assert_max_num_queries: Any
) -> None:
    post_voice("voice_call_received__basic", CallSid="CA" + "7" * 32)  # warms the cache
    with django_assert_max_num_queries(24):
        post_voice("voice_call_received__basic")
    with django_assert_max_num_queries(6):
        post_voice("voice_menu_selected__digit")


def test_changes_reach_new_calls_once_the_entry_expires(
    cached: Any, hotline: Hotline, post_voice: Any
) -> None:
    assert "<Gather" in post_voice("voice_call_received__basic").content.decode()
    OfficeHours.objects.filter(office=hotline.office).delete()
    assert "<Gather" in post_voice("voice_call_received__basic", CallSid="CA" + "1" * 32).content.decode()
    cached.VOICE_CONFIG_CACHE_SECONDS = 0  # as if the entry had expired
    body = post_voice("voice_call_received__basic", CallSid="CA" + "2" * 32).content.decode()
    assert "Our office is closed" in body
