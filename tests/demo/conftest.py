"""The demo's call simulator drives the voice hotline: its tests use the voice tests' hotline and workers."""

from tests.voice.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    enqueued,
    hotline,
    no_config_cache,
    no_pending_nudge,
    post_voice,
    recordings,
    run_tasks,
)
