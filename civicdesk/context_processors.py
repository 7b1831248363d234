from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def office(request: HttpRequest) -> dict[str, Any]:
    """The current office and membership (set once by the tenancy decorator), and what the nav offers."""
    return {
        "office": getattr(request, "office", None),
        "membership": getattr(request, "membership", None),
        # The text and call simulators answer only in demo mode (demo.views.demo_mode_required).
        "simulators_available": bool(settings.DEMO_MODE),
    }
