"""Voice fixtures: an office open around the clock with a main (English) and a Spanish IVR menu."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from messages.models import Tag, TriageQueue
from offices.models import IvrAction, IvrMenu, IvrOption, OfficeHours
from tests import factories
from tests.voice.helpers import request_for
from voice.twilio.backends import LocmemRecordingBackend

STAFF_NUMBERS = ["+12025550111", "+12025550112"]


@dataclass
class Hotline:
    office: Any
    number: Any
    main: IvrMenu
    spanish: IvrMenu
    health_option: IvrOption
    tag: Tag
    queue: TriageQueue

    @property
    def ids(self) -> dict[str, object]:
        return {"main": self.main.pk, "spanish": self.spanish.pk, "health_option": self.health_option.pk}


def open_all_week(office: Any) -> None:
    OfficeHours.objects.bulk_create(
        OfficeHours(office=office, weekday=day, opens_at=dt.time(0, 0), closes_at=dt.time(23, 59, 59, 999999))
        for day in range(7)
    )


@pytest.fixture
def hotline(office: Any, phone_number: Any) -> Hotline:
    open_all_week(office)
    tag: Any = factories.TagFactory.create(office=office, name="Health care")
    queue: Any = factories.QueueFactory.create(office=office, name="Casework")
    main = IvrMenu.objects.create(
        office=office,
        name="Main",
        is_main=True,
        greeting_text="Thank you for calling the office of Representative Rivera.",
        after_hours_text="Our office is closed. Our hours are nine to five, Monday to Friday.",
        info_text="We are at 100 Main Street, open nine to five on weekdays.",
        dial_numbers=STAFF_NUMBERS,
        dial_timeout_seconds=15,
    )
    spanish = IvrMenu.objects.create(
        office=office,
        name="Español",
        language="es-US",
        voice="Polly.Lupe",
        greeting_text="Gracias por llamar.",
    )
    health = IvrOption.objects.create(
        menu=main,
        digit="1",
        action=IvrAction.VOICEMAIL,
        prompt="For health care, press 1.",
        speech_keywords="health, medicare",
        topic="Health care",
        queue_name="Casework",
    )
    IvrOption.objects.create(
        menu=main, digit="2", action=IvrAction.STAFF, prompt="To talk to our staff, press 2."
    )
    IvrOption.objects.create(
        menu=main, digit="3", action=IvrAction.INFO, prompt="For our hours and address, press 3."
    )
    IvrOption.objects.create(
        menu=main,
        digit="9",
        action=IvrAction.LANGUAGE,
        prompt="Para español, oprima nueve.",
        target_menu=spanish,
    )
    IvrOption.objects.create(
        menu=main, digit="0", action=IvrAction.REPEAT, prompt="To hear this again, press 0."
    )
    IvrOption.objects.create(
        menu=spanish, digit="1", action=IvrAction.VOICEMAIL, prompt="Para dejar un mensaje, oprima uno."
    )
    return Hotline(office, phone_number, main, spanish, health, tag, queue)


@pytest.fixture
def post_voice(post_signed: Any, hotline: Hotline) -> Callable[..., Any]:
    """Post a voice fixture signed; checks the fixture's expected status and returns the response."""

    def post(name: str, *, expect: int | None = None, **overrides: str) -> Any:
        path, params, expected = request_for(name, hotline.ids, **overrides)
        response = post_signed(path, params)
        wanted = expected if expect is None else expect
        assert response.status_code == wanted, f"{name}: {response.status_code} {response.content[:300]!r}"
        return response

    return post


@pytest.fixture(autouse=True)
def no_config_cache(settings: Any) -> None:
    """Tests change the IVR between requests; test_config_cache.py covers the cache itself."""
    settings.VOICE_CONFIG_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def no_pending_nudge() -> None:
    """A nudge left by an earlier test (whose drain never ran) would hold off this test's for seconds."""
    from django.core.cache import cache

    from voice.services.followups import NUDGE_KEY

    cache.delete(NUDGE_KEY)


@pytest.fixture(autouse=True)
def recordings() -> Iterator[type[LocmemRecordingBackend]]:
    LocmemRecordingBackend.reset()
    yield LocmemRecordingBackend
    LocmemRecordingBackend.reset()


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks enqueued (after commit) by the code under test, as (task name, args); nothing runs."""
    calls: list[tuple[str, tuple[Any, ...]]] = []

    def record(task: Any, *args: Any, countdown: float | None = None) -> bool:
        calls.append((task.name.rsplit(".", 1)[-1], args))
        return True

    monkeypatch.setattr("common.queueing.enqueue", record)
    monkeypatch.setattr("voice.services.recordings.enqueue", record)
    return calls


@pytest.fixture
def run_tasks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run enqueued tasks at once, in this process (as a worker would, after commit). Returns their names."""
    ran: list[str] = []

    def run(task: Any, *args: Any, countdown: float | None = None) -> bool:
        ran.append(task.name.rsplit(".", 1)[-1])
        task(*args)
        return True

    monkeypatch.setattr("common.queueing.enqueue", run)
    monkeypatch.setattr("voice.services.recordings.enqueue", run)
    return ran


@pytest.fixture
def staff_in(hotline: Hotline) -> Client:
    membership: Any = factories.MembershipFactory.create(office=hotline.office, role="staff")
    client = Client()
    client.force_login(membership.user)
    return client
