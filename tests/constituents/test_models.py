"""What a constituent's record shows staff."""

from __future__ import annotations

import pytest

from constituents.models import Constituent


@pytest.mark.parametrize(
    ("parts", "shown"),
    [
        ({"city": "San Francisco", "state": "CA", "zip_code": "94117"}, "San Francisco CA 94117"),
        (
            {"address_line1": "1 Main St", "address_line2": "Apt 2", "city": "Springfield", "state": "IL"},
            "1 Main St, Apt 2, Springfield IL",
        ),
        ({"address_line1": "1 Main St", "zip_code": "62701"}, "1 Main St, 62701"),
        ({}, ""),
    ],
)
def test_postal_address_joins_only_the_parts_that_are_filled_in(parts, shown):
    assert Constituent(**parts).postal_address == shown
