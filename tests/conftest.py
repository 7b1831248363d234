"""Shared fixtures. Tests run on real PostgreSQL and Redis (embedded unless URLs are given)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client

from common.caching import cache_outage_forget
from messages.twilio import backends
from messages.twilio.signatures import sign
from tests import factories
from tests.fakes.fake_twilio import FakeTwilio
from tests.redis_cache import PrivateCache, private_cache_settings
from tests.task_ledger import TaskLedger, fresh_ledger, running_worker


@pytest.fixture
def office(db: None) -> Any:
    return factories.OfficeFactory.create(slug="alpha", name="Alpha Office")


@pytest.fixture
def phone_number(office: Any) -> Any:
    return factories.PhoneNumberFactory.create(office=office, e164="+14155550100")


@pytest.fixture
def staff_user(office: Any) -> Any:
    return factories.MembershipFactory.create(office=office, role="staff", user__username="alice").user


@pytest.fixture
def staff_client(staff_user: Any) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def _cache_outage_forgotten() -> Iterator[None]:
    """A cache failure in one test (common.caching stops asking for a few seconds) must not reach the next."""
    cache_outage_forget()
    yield
    cache_outage_forget()


@pytest.fixture(scope="session")
def _cache_redis() -> Iterator[redis.Redis]:
    """One plain client on the test settings' cache Redis, to look at and clean up tests' private keys."""
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    yield client
    client.close()


@pytest.fixture
def private_cache(settings: Any, _cache_redis: redis.Redis) -> Iterator[PrivateCache]:
    """The real Redis cache under a key prefix of this test's own (tests/redis_cache.py); its keys are deleted
    afterwards. Django's ``setting_changed`` rebuilds the cache handler, in every thread (the live server's
    too), so the next ``cache`` call uses the new prefix."""
    default = settings.CACHES["default"]
    settings.CACHES, prefix = private_cache_settings(default)
    private = PrivateCache(prefix=prefix, location=default["LOCATION"], client=_cache_redis)
    yield private
    private.clear()


@pytest.fixture
def locmem_outbox() -> Iterator[list[Any]]:
    backends.reset_locmem()
    yield backends.outbox
    backends.reset_locmem()


PostSigned = Callable[..., Any]


@pytest.fixture
def post_signed(client: Client) -> PostSigned:
    """POST form params to a webhook path, signed as Twilio would sign them for PUBLIC_BASE_URL."""

    def post(
        path: str,
        params: Mapping[str, str] | list[tuple[str, str]],
        *,
        token: str | None = None,
        signature: str | None = None,
    ) -> Any:
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        url = settings.PUBLIC_BASE_URL + path
        sig = signature if signature is not None else sign(url, items, token or settings.TWILIO_AUTH_TOKEN)
        from urllib.parse import urlencode

        return client.post(
            path,
            data=urlencode(items),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": sig},
        )

    return post


@pytest.fixture
def twilio_api(settings: Any) -> Iterator[FakeTwilio]:
    """A local fake of Twilio's HTTP API, with the real twilio SDK pointed at it (short timeouts)."""
    with FakeTwilio(accounts={settings.TWILIO_ACCOUNT_SID: settings.TWILIO_AUTH_TOKEN}) as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        settings.TWILIO_HTTP_TIMEOUT = (1.0, 1.0)
        yield server


@pytest.fixture(scope="module")
def inprocess_worker() -> Iterator[None]:
    """One real Celery worker (in-process, solo pool) on the tests' queue, shared by a module's tests."""
    with running_worker():
        yield


@pytest.fixture
def ledger(inprocess_worker: None) -> Iterator[TaskLedger]:
    """What the module's worker publishes and runs during this test (tests/task_ledger.py)."""
    with fresh_ledger() as recorded:
        yield recorded
