"""The office admin's settings for bulk replies: the approved-letter rule, quiet hours, the price."""

from __future__ import annotations

from django.contrib import admin

from correspondence.models import CorrespondenceSettings
from offices.admin import OfficeScopedAdmin


@admin.register(CorrespondenceSettings)
class CorrespondenceSettingsAdmin(OfficeScopedAdmin):
    list_display = [
        "office",
        "require_approved_letter",
        "quiet_hours_starts",
        "quiet_hours_ends",
        "segment_price",
    ]
    fields = ["office", "require_approved_letter", "quiet_hours_starts", "quiet_hours_ends", "segment_price"]
