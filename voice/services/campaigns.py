"""Call-in days: staff switch an office's call-in campaign on or off (the voice hotline's front menu).

Apart from ``voice.services`` (the call flow, which only reads campaigns), so the call path's
modules stay untouched by this staff action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from offices.models import Office
from voice.models import CallInCampaign
from voice.services.config import voice_config_clear

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)


class CallInCampaignNotFound(Exception):
    """The campaign is not one of this office's."""


@dataclass(frozen=True, slots=True)
class CallInSwitch:
    campaign: CallInCampaign
    changed: bool  # False: it already was in the state asked for, and nothing was written
    switched_off: tuple[str, ...] = ()  # titles of the office's other campaign switched off to make room


@transaction.atomic
def call_in_campaign_switch(
    *, office: Office, campaign_id: int, is_active: bool, switched_by: AbstractBaseUser
) -> CallInSwitch:
    """Switch one of the office's call-in campaigns on (the office's other active one goes off) or off.

    Records who switched and when on each campaign that changed. Locks the office's campaigns, so two
    staff switching at once are served one after the other. New calls hear the change at once in this
    process and within ``VOICE_CONFIG_CACHE_SECONDS`` in the others (voice.services.config).
    Raises :class:`CallInCampaignNotFound` if the campaign is not the office's.
    """
    # Every campaign of the office, locked in id order (the same order in every transaction: no deadlock).
    campaigns = list(CallInCampaign.objects.select_for_update().filter(office=office).order_by("pk"))
    campaign = next((c for c in campaigns if c.pk == campaign_id), None)
    if campaign is None:
        raise CallInCampaignNotFound(campaign_id)
    if campaign.is_active == is_active:
        return CallInSwitch(campaign, changed=False)
    now = timezone.now()
    others = [c for c in campaigns if c.is_active and c.pk != campaign.pk] if is_active else []
    for other in others:
        # First, so the "one active campaign per office" constraint holds after every statement.
        _switch(other, is_active=False, by=switched_by, at=now)
    _switch(campaign, is_active=is_active, by=switched_by, at=now)
    # This process's callers at once; other processes' caches expire on their own within seconds.
    transaction.on_commit(voice_config_clear)
    return CallInSwitch(campaign, changed=True, switched_off=tuple(c.title for c in others))


def _switch(campaign: CallInCampaign, *, is_active: bool, by: AbstractBaseUser, at: datetime) -> None:
    campaign.is_active = is_active
    campaign.switched_by_id = by.pk
    campaign.switched_at = at
    campaign.save(update_fields=["is_active", "switched_by", "switched_at"])
    logger.info(
        "call-in campaign %s (office %s) switched %s by user %s",
        campaign.pk,
        campaign.office_id,
        "on" if is_active else "off",
        by.pk,
    )
