"""Input parsing for the inbox's write views. Choices come from the office's own lookups, so another office's
tag, queue or user id is simply not a valid choice."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.utils import timezone

from constituents.models import Constituent
from messages.models import Priority
from messages.selectors.inbox import InboxLookups
from messages.services.triage import PROFILE_FIELDS
from offices.models import Office

ME = "me"
NOBODY = "none"
SNOOZE_PRESETS = [
    ("later", "Later today (in 3 hours)"),
    ("tomorrow", "Tomorrow morning"),
    ("next_week", "Next Monday morning"),
]
MORNING = time(8, 0)


def snooze_preset_until(preset: str, *, office: Office, now: datetime | None = None) -> datetime:
    """The moment a preset means, in the office's time zone."""
    now = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(office.time_zone))
    if preset == "later":
        return now + timedelta(hours=3)
    days = 1 if preset == "tomorrow" else (7 - now.weekday()) or 7
    return datetime.combine(now.date() + timedelta(days=days), MORNING, tzinfo=now.tzinfo)


def assignee_choices(lookups: InboxLookups) -> list[tuple[str, str]]:
    return [
        (ME, "Me"),
        (NOBODY, "Nobody"),
        *[(str(m.user_id), m.user.get_username()) for m in lookups.assignable],
    ]


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assign to")

    def __init__(self, *args: Any, lookups: InboxLookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["assignee"]).choices = assignee_choices(lookups)


class TagForm(forms.Form):
    tag = forms.TypedChoiceField(label="Tag", coerce=int)

    def __init__(self, *args: Any, lookups: InboxLookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["tag"]).choices = [(str(t.pk), t.name) for t in lookups.tags]


class QueueForm(forms.Form):
    queue = forms.ChoiceField(label="Queue")

    def __init__(self, *args: Any, lookups: InboxLookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["queue"]).choices = [
            (NOBODY, "No queue"),
            *[(str(q.pk), q.name) for q in lookups.queues],
        ]


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(label="Priority", choices=Priority.choices, coerce=int)


class SnoozeForm(forms.Form):
    preset = forms.ChoiceField(
        label="Snooze", choices=[("", "Pick a time below"), *SNOOZE_PRESETS], required=False
    )
    until = forms.DateTimeField(
        label="Snooze until",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def __init__(self, *args: Any, office: Office, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.office = office

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        preset, until = data.get("preset"), data.get("until")
        if preset:
            data["moment"] = snooze_preset_until(preset, office=self.office)
        elif until is not None:
            # datetime-local has no zone: it means the office's wall-clock time.
            naive = until.replace(tzinfo=None)
            data["moment"] = naive.replace(tzinfo=zoneinfo.ZoneInfo(self.office.time_zone))
        else:
            raise forms.ValidationError("Pick when the conversation should come back.")
        return data


class NoteForm(forms.Form):
    body = forms.CharField(label="Internal note", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class ConstituentProfileForm(forms.ModelForm[Constituent]):
    in_district = forms.NullBooleanField(
        label="District",
        required=False,
        widget=forms.Select(
            choices=[("unknown", "Not known"), ("true", "In district"), ("false", "Out of district")]
        ),
    )

    class Meta:
        model = Constituent
        fields = list(PROFILE_FIELDS)  # exactly what the profile service may write
        labels = {"address_line1": "Address", "address_line2": "Address (line 2)", "zip_code": "ZIP"}


class BulkForm(forms.Form):
    ACTIONS = ["close", "tag", "untag", "assign", "queue", "snooze"]

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("matching", "matching")], required=False)
    tag = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    assignee = forms.ChoiceField(required=False)
    queue = forms.ChoiceField(required=False)
    snooze = forms.ChoiceField(choices=SNOOZE_PRESETS, required=False)

    def __init__(self, *args: Any, lookups: InboxLookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["tag"]).choices = [
            ("", "—"),
            *[(str(t.pk), t.name) for t in lookups.tags],
        ]
        cast(forms.ChoiceField, self.fields["assignee"]).choices = [("", "—"), *assignee_choices(lookups)]
        cast(forms.ChoiceField, self.fields["queue"]).choices = [
            ("", "—"),
            (NOBODY, "No queue"),
            *[(str(q.pk), q.name) for q in lookups.queues],
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Any positive integer is accepted here: the bulk service rejects the whole action if one of them is
        # not a conversation of this office.
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else self.data.get("ids", [])
        data["ids"] = [int(v) for v in raw if str(v).isdigit() and 0 < int(v) < 2**63]
        needs = {"tag": "tag", "untag": "tag", "assign": "assignee", "queue": "queue", "snooze": "snooze"}
        field = needs.get(data.get("action", ""))
        if field and data.get(field) in (None, ""):
            article = "an" if field[0] in "aeiou" else "a"
            raise forms.ValidationError(f"Choose {article} {field} for this action.")
        return data
