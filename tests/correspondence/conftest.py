from __future__ import annotations

import pytest

from tests.correspondence.world import World, world_build


@pytest.fixture
def world(db: None) -> World:
    return world_build()
