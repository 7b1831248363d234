"""Rules every triage path applies the same way: one conversation at a time, in bulk, or through the API."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser

from messages.models import Tag, TriageQueue
from offices.selectors import is_assignable


class ForeignObjectNotFound(LookupError):
    """An object of another office was named. Callers answer exactly as for a missing object (a 404)."""


class AssigneeNotEligible(ValueError):
    """The person named may not own conversations of this office."""

    message = "Conversations can only be assigned to admins or staff of this office."


def tag_check(*, office_id: int, tag: Tag) -> None:
    """Raise ``ForeignObjectNotFound`` unless the tag is the office's own."""
    if tag.office_id != office_id:
        raise ForeignObjectNotFound("No such tag.")


def queue_check(*, office_id: int, queue: TriageQueue | None) -> None:
    """Raise ``ForeignObjectNotFound`` unless the queue is nobody's (None) or the office's own."""
    if queue is not None and queue.office_id != office_id:
        raise ForeignObjectNotFound("No such queue.")


def assignee_check(*, office_id: int, assignee: AbstractBaseUser | None) -> None:
    """Raise ``AssigneeNotEligible`` unless ``assignee`` is nobody, or one of the office's admins or staff."""
    if assignee is not None and not is_assignable(office_id=office_id, user=assignee):
        raise AssigneeNotEligible(AssigneeNotEligible.message)
