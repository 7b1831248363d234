"""Voice hotline data: call-in campaigns and tallies, and parked voice callbacks.

Their app label stays ``civicdesk_messages`` (``Meta.app_label``): they were created under it, so their
tables, migrations (``messages/migrations``), content types and admin permissions keep their names, and
moving the code into the voice app changed no row of any database.

Calls and voicemails themselves are ``Message`` rows: one ``Message(channel="call", provider_sid=CallSid)``
per call, one ``Message(channel="voicemail", provider_sid=RecordingSid)`` per recording, in the caller's
thread; what no query filters on (menu path, who answered, transcript state) lives in ``Message.details``
(see ``voice.services``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from constituents.models import Constituent
from messages.models import Tag
from offices.models import Office

# The label of the app these models were first created in (see the module docstring).
VOICE_MODELS_APP_LABEL = "civicdesk_messages"


class CallOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    ANSWERED = "answered", "Answered by staff"
    MISSED = "missed", "Missed: staff did not answer"
    VOICEMAIL = "voicemail", "Sent to voicemail"
    TALLIED = "tallied", "Position recorded (call-in day)"
    ABANDONED = "abandoned", "Caller hung up"


class TranscriptStatus(models.TextChoices):
    PENDING = "pending", "Transcript pending"
    COMPLETED = "completed", "Transcribed"
    NONE = "none", "No transcript"


class CallInPosition(models.TextChoices):
    SUPPORT = "support", "Support"
    OPPOSE = "oppose", "Oppose"


class CallInCampaign(models.Model):
    """A call-in day: a front menu about one issue that tallies callers' positions with no staff time."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="call_in_campaigns")
    tag = models.ForeignKey(
        Tag,
        on_delete=models.PROTECT,
        related_name="call_in_campaigns",
        help_text="The issue callers call about.",
    )
    title = models.CharField(max_length=120, help_text="e.g. H.R. 1234")
    prompt_text = models.TextField(
        max_length=600,
        help_text="Played first to every caller while active, e.g. “If you are calling about H.R. 1234, "
        "press 1 to support it, 2 to oppose it, or 3 to leave a message. For anything else, stay on the "
        "line.”",
    )
    thanks_text = models.CharField(
        max_length=300, default="Thank you. Your position has been recorded. Goodbye."
    )
    is_active = models.BooleanField(default=False, help_text="At most one campaign per office is active.")
    # Who last switched it on or off, and when (voice.services.campaigns, or the admin).
    switched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    switched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = VOICE_MODELS_APP_LABEL
        ordering = ["-created_at", "-id"]
        verbose_name = "call-in campaign"
        constraints = [
            models.UniqueConstraint(
                fields=["office"], condition=models.Q(is_active=True), name="callin_one_active_per_office"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class CallInTally(models.Model):
    """One caller's position on a campaign's issue. A repeat caller updates their row, never adds one."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(CallInCampaign, on_delete=models.CASCADE, related_name="tallies")
    constituent = models.ForeignKey(Constituent, on_delete=models.PROTECT, related_name="+")
    # E.164; empty when the caller withheld their number (such rows cannot be deduplicated).
    caller_phone = models.CharField(max_length=16, blank=True)
    position = models.CharField(max_length=8, choices=CallInPosition.choices)
    # Copied from the constituent when the position is recorded: None means not yet known.
    in_district = models.BooleanField(null=True, blank=True)
    first_call_sid = models.CharField(max_length=34)
    last_call_sid = models.CharField(max_length=34)
    call_count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = VOICE_MODELS_APP_LABEL
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "call-in tallies"
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "caller_phone"],
                condition=~models.Q(caller_phone=""),
                name="callin_tally_once_per_phone",
            ),
            models.UniqueConstraint(fields=["campaign", "first_call_sid"], name="callin_tally_once_per_call"),
            models.CheckConstraint(
                condition=models.Q(position__in=CallInPosition.values), name="callin_tally_position_valid"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "position"], name="callin_tally_by_position")]

    def __str__(self) -> str:
        return f"{self.caller_phone or 'withheld'}: {self.position}"


class ParkedVoiceCallback(models.Model):
    """A voice callback for a call not stored yet, kept raw and applied when the call appears; never dropped.

    Recording and transcription callbacks carry no caller or office number, so until the call's own webhook
    (or any callback that names the numbers) arrives there is no office or thread to attach them to.
    """

    call_sid = models.CharField(max_length=34)
    # Set when an office's own subaccount token signed the callback: it may then apply only to that office's
    # call (messages.twilio.signatures). Empty for the deployment's token.
    signed_for_office = models.ForeignKey(
        Office, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=16)
    payload = models.JSONField()  # the raw form parameters, {name: [values]}
    query = models.JSONField(default=dict, blank=True)  # our own parameters from the callback URL
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = VOICE_MODELS_APP_LABEL
        indexes = [
            models.Index(
                fields=["call_sid", "received_at"],
                condition=models.Q(applied_at__isnull=True),
                name="voice_callback_parked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.call_sid}"
