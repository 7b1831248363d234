"""The nudge's own Redis client follows the cache settings, as Django's cache handler does."""

from __future__ import annotations

from typing import Any

from common import queueing
from tests.faults import TcpProxy
from tests.redis_cache import PrivateCache, redis_upstream


def test_nudge_keys_go_to_the_redis_the_cache_settings_name_after_they_change(
    settings: Any, private_cache: PrivateCache
) -> None:
    assert queueing._key_set("nudge-before", 5)  # a client for the settings' Redis now exists
    upstream, db = redis_upstream(private_cache.location)
    with TcpProxy(upstream=upstream) as proxy:
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{proxy.port}/{db}"}
        }
        assert queueing._key_set("nudge-after", 5)
        assert proxy.connections == 1
    assert private_cache.keys() == ["nudge-after", "nudge-before"]
