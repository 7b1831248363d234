"""An office's voice configuration (the office, IVR menus and options, active call-in campaign, hours, the
numbers that take calls), held briefly.

On a call-in day every call reads the same menus, options, campaign and hours. Each process keeps what it
read for ``VOICE_CONFIG_CACHE_SECONDS`` (5 by default), which takes about eight queries off every call (see
docs/performance.md, "Voice"); an admin's change reaches new calls within that time. ``0`` turns it off.
The cached model instances are shared between threads and only ever read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Prefetch
from django.db.models.functions import Lower

from messages.models import Tag, TriageQueue
from offices.models import IvrMenu, IvrOption, Office, OfficePhoneNumber
from offices.selectors import OfficeSchedule, office_schedule
from voice.models import CallInCampaign


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    office_id: int
    office: Office
    main: IvrMenu | None
    menus: Mapping[int, IvrMenu]
    options: Mapping[int, IvrOption]
    campaign: CallInCampaign | None  # the active one, with its tag
    schedule: OfficeSchedule
    # The tags and queues voicemail options name, by lower-case name.
    tags: Mapping[str, Tag]
    queues: Mapping[str, TriageQueue]
    # The office's numbers with ``voice_enabled`` (ids): a webhook to any other number is not in service.
    voice_number_ids: frozenset[int]

    def takes_calls_on(self, number_id: int) -> bool:
        return number_id in self.voice_number_ids

    def menu(self, pk: int | None) -> IvrMenu | None:
        return self.menus.get(pk) if pk is not None else None


_lock = threading.Lock()
_cache: dict[int, tuple[float, VoiceConfig]] = {}


def voice_config_load(*, office: Office) -> VoiceConfig:
    """Read the office's voice configuration (eight queries)."""
    menus = list(
        IvrMenu.objects.filter(office=office).prefetch_related(
            Prefetch("options", queryset=IvrOption.objects.order_by("digit"))
        )
    )
    campaign = CallInCampaign.objects.filter(office=office, is_active=True).select_related("tag").first()
    options = [option for menu in menus for option in menu.options.all()]
    topics = {option.topic.lower() for option in options if option.topic}
    queue_names = {option.queue_name.lower() for option in options if option.queue_name}
    return VoiceConfig(
        office_id=office.pk,
        office=office,
        main=next((menu for menu in menus if menu.is_main), None),
        menus={menu.pk: menu for menu in menus},
        options={option.pk: option for option in options},
        campaign=campaign,
        schedule=office_schedule(office=office),
        # Names match case-insensitively, as the admin checks them (the tag's unique index is on lower(name)).
        tags={
            tag.name.lower(): tag
            for tag in Tag.objects.annotate(lower_name=Lower("name")).filter(
                office=office, lower_name__in=topics
            )
        },
        queues={
            queue.name.lower(): queue
            for queue in TriageQueue.objects.annotate(lower_name=Lower("name")).filter(
                office=office, lower_name__in=queue_names
            )
        },
        voice_number_ids=frozenset(
            OfficePhoneNumber.objects.filter(office=office, voice_enabled=True).values_list("pk", flat=True)
        ),
    )


def voice_config(*, office: Office) -> VoiceConfig:
    """The office's voice configuration, at most ``VOICE_CONFIG_CACHE_SECONDS`` old."""
    return _cached(office.pk, lambda: office)


def voice_config_for(*, office_id: int) -> VoiceConfig:
    """The same, by office id: the webhooks know only the id (from the number or the call row). The office
    itself is part of the cached configuration, so a cached call reads neither."""
    return _cached(office_id, lambda: Office.objects.get(pk=office_id))


def _cached(office_id: int, office: Callable[[], Office]) -> VoiceConfig:
    ttl = float(getattr(settings, "VOICE_CONFIG_CACHE_SECONDS", 0) or 0)
    if ttl <= 0:
        return voice_config_load(office=office())
    now = time.monotonic()
    with _lock:
        cached = _cache.get(office_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    config = voice_config_load(office=office())
    with _lock:
        _cache[office_id] = (now + ttl, config)
    return config


def voice_config_clear() -> None:
    """Forget every office's configuration (this process only)."""
    with _lock:
        _cache.clear()
