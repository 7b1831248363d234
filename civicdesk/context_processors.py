from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def office(request: HttpRequest) -> dict[str, Any]:
    """The current office and membership, set once by the tenancy decorator."""
    return {
        "office": getattr(request, "office", None),
        "membership": getattr(request, "membership", None),
    }
