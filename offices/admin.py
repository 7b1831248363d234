"""Admin for offices, and the office-scoping base every tenant model's admin uses.

Superusers see everything. Anyone else with admin access sees only rows of offices they are an *admin* of,
and can only pick those offices (and their rows) in forms.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from offices.models import (
    Membership,
    Office,
    OfficeHoliday,
    OfficeHours,
    OfficePhoneNumber,
    Role,
    TwilioAccount,
)
from offices.selectors import account_named
from offices.services import (
    MembershipError,
    PhoneTaken,
    membership_add,
    membership_invite,
    membership_remove,
    membership_role_set,
)


def admin_office_ids(request: HttpRequest) -> list[int]:
    return list(
        Membership.objects.filter(user_id=int(request.user.pk or 0), role=Role.ADMIN).values_list(
            "office_id", flat=True
        )
    )


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


def _is_email_address(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


class MembershipAddForm(forms.ModelForm[Membership]):
    """An office admin adds an existing account to their office by naming it exactly, or invites someone.

    They never browse the platform's users: the account is found by its exact username or (ignoring case)
    its email address, or the form says no account has that name. With "Invite" ticked, an email address
    no account has becomes an invitation (``offices.services.membership_invite``): a new account, its
    membership and an email with a link to choose a password. The office choices are the offices they
    administer (``OfficeScopedAdmin.formfield_for_foreignkey``), so another office's id is an invalid choice.
    """

    user_identifier = forms.CharField(
        label="Username or email address",
        max_length=254,
        help_text="The exact username or email address of an existing account, or the email address of "
        "someone to invite.",
    )
    invite = forms.BooleanField(
        label="Invite them if they have no account",
        required=False,
        help_text="An account is made for this email address, and they are emailed a link to choose a "
        "password. Inviting again resends the link until they have chosen one.",
    )
    first_name = forms.CharField(label="First name (for an invitation)", max_length=150, required=False)
    last_name = forms.CharField(label="Last name (for an invitation)", max_length=150, required=False)

    class Meta:
        model = Membership
        fields = ["user_identifier", "invite", "first_name", "last_name", "office", "role"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invitation_email: str | None = None

    def clean_user_identifier(self) -> str:
        return str(self.cleaned_data["user_identifier"]).strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        identifier = cleaned.get("user_identifier")
        if not identifier:
            return cleaned
        invite = bool(cleaned.get("invite")) and _is_email_address(identifier)
        match = account_named(identifier=identifier)
        if match.ambiguous:
            self.add_error(
                "user_identifier", "More than one account uses that email address: give the username."
            )
            return cleaned
        user = match.user
        if invite and (user is None or not user.has_usable_password()):
            self.invitation_email = identifier  # a new account, or one that has never chosen a password
        elif user is None:
            self.add_error(
                "user_identifier",
                "To invite someone new, give their email address."
                if cleaned.get("invite")
                else "No account has that username or email address. To invite someone new, give their "
                "email address and tick “Invite them if they have no account”.",
            )
        else:  # already a member: ``membership_add`` says so, and the form is shown again with it
            self.instance.user = user
        return cleaned


class _Rejection(Exception):
    """A membership service refused the save after the form was valid (say, another admin added the same
    person a moment earlier). The admin's transaction rolls back, and the form is shown again with this."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_REJECTION = "_membership_rejection"


def _form_with_rejection(
    form_class: type[forms.ModelForm[Membership]], rejection: _Rejection
) -> type[forms.ModelForm[Membership]]:
    class RejectedForm(form_class):  # type: ignore[valid-type,misc]  # a base that is a variable: the admin's form
        def clean(self) -> dict[str, Any]:
            cleaned: dict[str, Any] = super().clean() or {}
            if not self.has_error(rejection.field or NON_FIELD_ERRORS):
                self.add_error(rejection.field, rejection.message)
            return cleaned

    return RejectedForm


@admin.register(Membership)
class MembershipAdmin(OfficeScopedAdmin):
    """Superusers pick any user for any office. An office admin names an existing account exactly
    (``MembershipAddForm``), or invites someone, to an office they administer; nobody moves a membership
    to another user or office. Every save and delete goes through ``offices.services``, which also keeps
    ``is_staff`` in step with the admin role."""

    list_display = ["user", "office", "role", "phone"]
    list_filter = ["role"]
    search_fields = ["user__username", "office__name"]
    # The user picker searches every account on the platform; only a superuser's add form has it (the
    # search behind it needs view permission on users, which only superusers have).
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "office"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and not request.user.is_superuser:
            return list(MembershipAddForm.Meta.fields)
        if obj is None:  # a new membership's staff phone is set on its change page, once it exists
            return [name for name in super().get_fields(request, obj) if name != "phone"]
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
        rejection = getattr(request, _REJECTION, None)
        return _form_with_rejection(form, rejection) if rejection is not None else form

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Rejection as rejection:
            # Nothing was written (the admin's transaction rolled back): the same form again, with why.
            setattr(request, _REJECTION, rejection)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        actor = cast(User, request.user)  # the admin site lets only logged-in staff this far
        invitation_email = getattr(form, "invitation_email", None)
        try:
            if change:
                saved = membership_role_set(
                    office=obj.office,
                    membership_id=int(obj.pk),
                    role=obj.role,
                    phone=obj.phone,
                    changed_by=actor,
                )
            elif invitation_email:
                invitation = membership_invite(
                    office=obj.office,
                    invited_by=actor,
                    email=invitation_email,
                    role=obj.role,
                    first_name=form.cleaned_data.get("first_name", ""),
                    last_name=form.cleaned_data.get("last_name", ""),
                    base_url=settings.PUBLIC_BASE_URL or request.build_absolute_uri("/"),
                )
                saved = invitation.membership
                if invitation.email_sent:
                    self.message_user(
                        request, f"An invitation to choose a password was emailed to {invitation_email}."
                    )
            else:
                saved = membership_add(office=obj.office, user=obj.user, role=obj.role, added_by=actor)
        except MembershipError as error:
            field = None if change else ("user_identifier" if "user_identifier" in form.fields else "user")
            if isinstance(error, PhoneTaken):
                field = "phone"
            raise _Rejection(field, error.message) from error
        obj.pk, obj.user, obj.role, obj.created_at = saved.pk, saved.user, saved.role, saved.created_at
        obj._state.adding, obj._state.db = False, saved._state.db

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(office=obj.office, membership_id=int(obj.pk), removed_by=cast(User, request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        with transaction.atomic():
            for membership in queryset.select_related("office"):
                self.delete_model(request, membership)


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
