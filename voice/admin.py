"""Voice hotline admin: IVR menus (with a TwiML preview), call-in campaigns and tallies, parked callbacks.

The IVR models belong to ``offices``, but their admin is registered here: the preview renders TwiML
(``voice.twiml``) and option topics are checked against the messages app's tags and queues, and ``offices``
may not import either app.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from messages.models import Tag, TriageQueue
from offices.admin import OfficeScopedAdmin, admin_office_ids
from offices.models import IvrAction, IvrMenu, IvrOption
from voice.models import CallInCampaign, CallInTally, ParkedVoiceCallback
from voice.services.campaigns import call_in_campaign_switch
from voice.services.flow import menu_preview
from voice.twiml import render_pretty


class IvrOptionFormSet(forms.BaseInlineFormSet[IvrOption, IvrMenu, forms.ModelForm[IvrOption]]):
    """Checks what one option cannot check alone: topics and queues name this office's tags and queues."""

    def clean(self) -> None:
        super().clean()
        menu: IvrMenu = self.instance
        if menu.office_id is None:
            return
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            topic, queue = data.get("topic", ""), data.get("queue_name", "")
            if topic and not Tag.objects.filter(office_id=menu.office_id, name__iexact=topic).exists():
                form.add_error(
                    "topic", f"This office has no tag named “{topic}”. Create it under Tags first."
                )
            if (
                queue
                and not TriageQueue.objects.filter(office_id=menu.office_id, name__iexact=queue).exists()
            ):
                form.add_error("queue_name", f"This office has no queue named “{queue}”.")
            if data.get("action") == IvrAction.STAFF and not menu.dial_numbers:
                form.add_error("action", "Add staff numbers to the menu before offering “talk to staff”.")


class IvrOptionInline(admin.TabularInline[IvrOption, IvrMenu]):
    model = IvrOption
    formset = IvrOptionFormSet
    fk_name = "menu"
    extra = 0
    fields = ["digit", "action", "prompt", "speech_keywords", "topic", "queue_name", "target_menu"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "target_menu" and not request.user.is_superuser:
            # Only menus of offices this admin runs; the model's clean() also requires the same office.
            kwargs["queryset"] = IvrMenu.objects.filter(office_id__in=admin_office_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser or bool(admin_office_ids(request))

    has_change_permission = has_add_permission = has_delete_permission = has_view_permission


@admin.register(IvrMenu)
class IvrMenuAdmin(OfficeScopedAdmin):
    list_display = ["name", "office", "is_main", "language", "voice", "updated_at"]
    list_filter = ["is_main", "language"]
    search_fields = ["name"]
    inlines = [IvrOptionInline]
    readonly_fields = ["twiml_preview"]
    fieldsets = [
        (None, {"fields": ["office", "name", "is_main", "language", "voice"]}),
        (
            "Greeting",
            {"fields": ["greeting_text", "greeting_audio", "after_hours_text", "after_hours_audio"]},
        ),
        (
            "Prompts",
            {
                "fields": [
                    "info_text",
                    "voicemail_prompt",
                    "staff_unavailable_text",
                    "invalid_input_text",
                    "goodbye_text",
                ]
            },
        ),
        (
            "Behaviour",
            {
                "fields": [
                    "speech_enabled",
                    "gather_timeout_seconds",
                    "max_attempts",
                    "dial_numbers",
                    "dial_timeout_seconds",
                    "max_recording_seconds",
                ]
            },
        ),
        ("TwiML preview", {"fields": ["twiml_preview"], "classes": ["collapse"]}),
    ]

    @admin.display(description="What callers get (TwiML)")
    def twiml_preview(self, obj: IvrMenu | None) -> SafeString | str:
        if obj is None or obj.pk is None:
            return "Save the menu to see its TwiML."
        blocks = [(label, render_pretty(step)) for label, step in menu_preview(obj)]
        return format_html(
            "<p>The TwiML Twilio receives at each point of a call, as saved. Office hours decide whether a "
            "call starts with the menu or the after-hours voicemail.</p>{}",
            format_html_join("", '<h4>{}</h4><pre class="twiml">{}</pre>', blocks),
        )


class CallInCampaignForm(forms.ModelForm[CallInCampaign]):
    class Meta:
        model = CallInCampaign
        fields = ["office", "title", "tag", "prompt_text", "thanks_text", "is_active"]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        office, tag = data.get("office"), data.get("tag")
        if office is not None and tag is not None and tag.office_id != office.pk:
            raise ValidationError({"tag": "Choose one of this office's tags."})
        return data


@admin.register(CallInCampaign)
class CallInCampaignAdmin(OfficeScopedAdmin):
    form = CallInCampaignForm
    list_display = ["title", "office", "tag", "is_active", "switched_by", "switched_at", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["title"]
    readonly_fields = ["switched_by", "switched_at"]

    def save_model(self, request: HttpRequest, obj: CallInCampaign, form: Any, change: bool) -> None:
        # A switch goes through the same service as the call-in page, which records who and when; the form
        # has already refused a second live campaign. The other edits are saved with the state as stored.
        wanted = obj.is_active
        stored = bool(form.initial.get("is_active", False)) if change else False
        obj.is_active = stored
        super().save_model(request, obj, form, change)
        if wanted != stored:
            call_in_campaign_switch(
                office=obj.office,
                campaign_id=obj.pk,
                is_active=wanted,
                switched_by=request.user,  # type: ignore[arg-type]  # the admin requires a logged-in user
            )
            obj.refresh_from_db()


@admin.register(CallInTally)
class CallInTallyAdmin(OfficeScopedAdmin):
    list_display = ["campaign", "caller_phone", "position", "in_district", "call_count", "updated_at"]
    list_filter = ["position", "in_district"]
    search_fields = ["caller_phone"]
    raw_id_fields = ["campaign", "constituent"]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # counted from calls, never edited

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ParkedVoiceCallback)
class ParkedVoiceCallbackAdmin(admin.ModelAdmin[ParkedVoiceCallback]):
    """Superusers only: a parked callback has no office until its call is stored."""

    list_display = ["call_sid", "kind", "received_at", "applied_at"]
    list_filter = ["kind"]
    search_fields = ["call_sid"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ParkedVoiceCallback]:
        return (
            super().get_queryset(request) if request.user.is_superuser else ParkedVoiceCallback.objects.none()
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # raw evidence is kept as received

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
