"""The UI shell: home (office picker) and the office landing page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from offices.selectors import memberships_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a member of one office straight to it; let a member of several choose."""
    memberships = list(memberships_for_user(user=request.user))  # type: ignore[arg-type]  # login_required
    if len(memberships) == 1:
        return redirect("messages:inbox", office_slug=memberships[0].office.slug)
    return render(request, "civicdesk/home.html", {"memberships": memberships})
