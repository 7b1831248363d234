"""Read-only records in the admin, and dead letters: for operators (superusers) only, and read-only.

A dead letter names a task and its arguments, across every office; office staff and office admins never see
the page, whatever permissions they are granted.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from common.models import DeadLetter


class RecordAdmin(admin.ModelAdmin[Any]):  # any model
    """A record of what happened (a message as received or sent, a consent change, a thread event): shown,
    never added, edited or deleted in the admin, by anyone. What the inbox shows must be what was said."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(RecordAdmin):
    list_display = ("task_name", "task_id", "retries", "deliveries", "first_seen_at", "last_seen_at")
    list_filter = ("task_name",)
    search_fields = ("task_id", "task_name")
    date_hierarchy = "last_seen_at"
    readonly_fields = (
        "task_name",
        "task_id",
        "retries",
        "args",
        "kwargs",
        "deliveries",
        "first_seen_at",
        "last_seen_at",
        "last_error",
    )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)
