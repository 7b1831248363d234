"""Office scoping for views: ``/o/<office_slug>/...`` resolves the member's office once, or 404s.

Non-members get the same 404 as a missing office, so the URL space leaks nothing (PLAYBOOK §5).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from offices.models import Membership, Office, Role
from offices.selectors import membership_for

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]


class OfficeRequest(HttpRequest):
    office: Office
    membership: Membership


def office_view(
    *, roles: tuple[Role, ...] = (Role.ADMIN, Role.STAFF, Role.OFFICIAL)
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Require membership of the URL's office (404 otherwise) and one of ``roles`` (403 otherwise)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, office_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(user=request.user, slug=office_slug)
            if membership is None:
                raise Http404("No such office.")
            if membership.role not in roles:
                raise PermissionDenied("Your role in this office cannot do that.")
            request.office = membership.office  # type: ignore[attr-defined]  # set once, read by views
            request.membership = membership  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


WRITE_ROLES = (Role.ADMIN, Role.STAFF)
