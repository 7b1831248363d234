"""Admin for offices, and the office-scoping base every tenant model's admin uses.

Superusers see everything. Anyone else with admin access sees only rows of offices they are an *admin* of,
and can only pick those offices (and their rows) in forms.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from offices.models import (
    Membership,
    Office,
    OfficeHoliday,
    OfficeHours,
    OfficePhoneNumber,
    Role,
    TwilioAccount,
)


def admin_office_ids(request: HttpRequest) -> list[int]:
    return list(
        Membership.objects.filter(user_id=int(request.user.pk or 0), role=Role.ADMIN).values_list(
            "office_id", flat=True
        )
    )


class RecordAdmin(admin.ModelAdmin[Any]):  # any model
    """A record of what happened (a message as received or sent, a consent change, a thread event): shown,
    never added, edited or deleted in the admin, by anyone. What the inbox shows must be what was said."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OfficeScopedAdmin(admin.ModelAdmin[Any]):  # any office-owned model
    """Limits list, change and choice fields to the user's offices. ``office_path`` names the office field."""

    office_path = "office"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.office_path}__in": admin_office_ids(request)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            related = db_field.related_model
            office_ids = admin_office_ids(request)
            if related is Office:
                kwargs["queryset"] = Office.objects.filter(pk__in=office_ids)
            elif any(f.name == "office" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(office_id__in=office_ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            related = db_field.related_model
            if any(f.name == "office" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(office_id__in=admin_office_ids(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or bool(admin_office_ids(request))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)


class OfficeHoursInline(admin.TabularInline[OfficeHours, Office]):
    model = OfficeHours
    extra = 0


class OfficeHolidayInline(admin.TabularInline[OfficeHoliday, Office]):
    model = OfficeHoliday
    extra = 0


@admin.register(Office)
class OfficeAdmin(OfficeScopedAdmin):
    office_path = "pk"
    list_display = ["name", "slug", "official_name", "official_title", "district_label", "time_zone"]
    search_fields = ["name", "slug", "official_name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [OfficeHoursInline, OfficeHolidayInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(pk__in=admin_office_ids(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # a new tenant is a deployment decision

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser


class MembershipAddForm(forms.ModelForm[Membership]):
    """An office admin adds an existing account to their office by naming it exactly.

    They never browse the platform's users: the account is found by its exact username or (ignoring case)
    its email address, or the form says no account has that name. The office choices are the offices they
    administer (``OfficeScopedAdmin.formfield_for_foreignkey``), so another office's id is an invalid choice.
    """

    user_identifier = forms.CharField(
        label="Username or email address",
        max_length=254,
        help_text="The exact username or email address of an existing account.",
    )

    class Meta:
        model = Membership
        fields = ["user_identifier", "office", "role"]

    def clean_user_identifier(self) -> Any:
        identifier = self.cleaned_data["user_identifier"].strip()
        users = list(
            get_user_model()._default_manager.filter(Q(username=identifier) | Q(email__iexact=identifier))[:3]
        )
        by_username = [user for user in users if user.get_username() == identifier]
        if by_username:
            return by_username[0]
        if not users:
            raise forms.ValidationError(
                "No account has that username or email address. A platform administrator creates accounts."
            )
        if len(users) > 1:
            raise forms.ValidationError("More than one account uses that email address: give the username.")
        return users[0]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        user, office = cleaned.get("user_identifier"), cleaned.get("office")
        if user is not None and office is not None:
            if Membership.objects.filter(user=user, office=office).exists():
                message = f"{user.get_username()} is already a member of this office."
                self.add_error("user_identifier", message)
            else:
                self.instance.user = user
        return cleaned


@admin.register(Membership)
class MembershipAdmin(OfficeScopedAdmin):
    """Superusers pick any user for any office. An office admin names an existing account exactly
    (``MembershipAddForm``) and adds it to an office they administer; nobody swaps a membership's user."""

    list_display = ["user", "office", "role"]
    list_filter = ["role"]
    search_fields = ["user__username", "office__name"]
    # The user picker searches every account on the platform; only a superuser's add form has it (the
    # search behind it needs view permission on users, which only superusers have).
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and not request.user.is_superuser:
            return list(MembershipAddForm.Meta.fields)
        return super().get_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None and not request.user.is_superuser:
            kwargs["form"] = MembershipAddForm
        form = super().get_form(request, obj, change, **kwargs)
        office_field = form.base_fields.get("office")
        if obj is None and isinstance(office_field, forms.ModelChoiceField) and not request.user.is_superuser:
            offices = list(office_field.queryset or [])
            if len(offices) == 1:  # nothing to choose: the office is the admin's own
                office_field.initial = offices[0].pk
                office_field.widget = forms.HiddenInput()
        return form


@admin.register(OfficePhoneNumber)
class OfficePhoneNumberAdmin(OfficeScopedAdmin):
    list_display = ["e164", "office", "number_type", "sms_enabled", "voice_enabled", "messaging_service_sid"]
    list_filter = ["number_type", "sms_enabled", "voice_enabled"]
    search_fields = ["e164", "label"]


@admin.register(TwilioAccount)
class TwilioAccountAdmin(OfficeScopedAdmin):
    list_display = ["account_sid", "label", "office"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["auth_token"].widget = forms.PasswordInput(render_value=False)
        form.base_fields["auth_token"].required = obj is None
        return form

    def save_model(self, request: HttpRequest, obj: TwilioAccount, form: Any, change: bool) -> None:
        if change and not form.cleaned_data.get("auth_token"):
            obj.auth_token = TwilioAccount.objects.get(pk=obj.pk).auth_token  # blank means "unchanged"
        super().save_model(request, obj, form, change)


@admin.register(OfficeHours)
class OfficeHoursAdmin(OfficeScopedAdmin):
    list_display = ["office", "weekday", "opens_at", "closes_at"]


@admin.register(OfficeHoliday)
class OfficeHolidayAdmin(OfficeScopedAdmin):
    list_display = ["office", "date", "name"]
