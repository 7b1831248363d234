"""Form letters (a per-office library of versioned, approved texts) and bulk replies (one letter to many).

A form letter's versions are immutable once approved: editing an approved letter writes a new draft version,
and the approved one keeps being the letter that is sent until the new version is approved.

A bulk reply is prepared once: one ``BulkRecipient`` row per constituent, with the body rendered and frozen,
so what was previewed is what is sent, and a unique constraint makes a second row for the same constituent
impossible. Each recipient's text is an ordinary outbound ``Message`` in their own conversation, sent by the
messages app's delivery state machine; the recipient row only says whether it has been handed to it yet.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from messages.models import Conversation, Message, Tag
from offices.models import Office


class FormLetter(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=120)
    tags = models.ManyToManyField(Tag, blank=True, related_name="+", help_text="The issues it answers.")
    # The version that is sent; it stays until another version is approved.
    approved_version = models.ForeignKey(
        "FormLetterVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["office", "name"], name="form_letter_name_per_office")]
        indexes = [models.Index(fields=["office", "-updated_at"], name="form_letter_office_recent")]

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        """draft (never approved), approved (has a version that is sent) or retired (no longer offered)."""
        if self.retired_at is not None:
            return "retired"
        return "approved" if self.approved_version_id is not None else "draft"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    # Was approved; another version has been approved since.
    SUPERSEDED = "superseded", "Superseded"


class FormLetterVersion(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+", db_index=False)
    letter = models.ForeignKey(FormLetter, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    approval_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approval_requested_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["letter", "number"], name="form_letter_version_number"),
            models.CheckConstraint(
                condition=models.Q(status__in=VersionStatus.values), name="form_letter_version_status_valid"
            ),
            # An approved (or once approved) version names who approved it and when.
            models.CheckConstraint(
                condition=~models.Q(status__in=["approved", "superseded"])
                | (models.Q(approved_at__isnull=False)),
                name="form_letter_version_approval_recorded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.letter_id} v{self.number}"


QUIET_HOURS_STARTS = time(21, 0)
QUIET_HOURS_ENDS = time(8, 0)


class CorrespondenceSettings(models.Model):
    """An office's rules for bulk replies; an office without a row has the defaults."""

    office = models.OneToOneField(Office, on_delete=models.CASCADE, primary_key=True, related_name="+")
    require_approved_letter = models.BooleanField(
        "bulk replies need an approved letter",
        default=True,
        help_text="When off, staff may type a one-off body for a bulk reply.",
    )
    quiet_hours_starts = models.TimeField(
        default=QUIET_HOURS_STARTS, help_text="No bulk text after this, in the recipient's local time."
    )
    quiet_hours_ends = models.TimeField(
        default=QUIET_HOURS_ENDS, help_text="No bulk text before this, in the recipient's local time."
    )
    segment_price = models.DecimalField(
        "price per segment (USD)",
        max_digits=8,
        decimal_places=5,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="For the cost estimate. Blank: the deployment's BULK_SEGMENT_PRICE_USD.",
    )

    class Meta:
        verbose_name = "correspondence settings"
        verbose_name_plural = "correspondence settings"

    def __str__(self) -> str:
        return f"Correspondence settings of {self.office_id}"


class BulkStatus(models.TextChoices):
    DRAFT = "draft", "Draft (preview only)"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class BulkReply(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    letter_version = models.ForeignKey(
        FormLetterVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The template that is rendered for each recipient: the letter version's body, or a one-off body.
    body = models.TextField()
    # What the staffer chose: {"conversations": [...]}, {"filter": {...}} or {"tag": id}, as given.
    audience = models.JSONField(default=dict)
    audience_label = models.CharField(max_length=300, blank=True)
    skip_replied = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=BulkStatus.choices, default=BulkStatus.DRAFT)
    send_at = models.DateTimeField(null=True, blank=True)
    # What the preview counted: recipients, and exclusions by reason.
    recipient_count = models.PositiveIntegerField(default=0)
    exclusions = models.JSONField(default=dict)
    segments_total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prepared_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=BulkStatus.values), name="bulk_reply_status_valid"
            )
        ]
        indexes = [
            models.Index(fields=["office", "-created_at"], name="bulk_reply_office_recent"),
            models.Index(
                fields=["status"],
                condition=models.Q(status__in=["scheduled", "sending"]),
                name="bulk_reply_active",
            ),
        ]

    def __str__(self) -> str:
        return f"Bulk reply {self.pk}"


class RecipientState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    # Its Message exists and belongs to the delivery state machine; the Message's status says the rest.
    HANDED = "handed", "Handed to delivery"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class SkipReason(models.TextChoices):
    OPTED_OUT = "opted_out", "Opted out of texts"
    NO_NUMBER = "no_number", "No textable number"
    NOT_CONTACTED = "not_contacted", "Has not written to the office"
    ALREADY_RECEIVED = "already_received", "Already received this letter"
    REPLIED = "replied", "Staff replied since their last message"


class BulkRecipient(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Indexed by the unique constraint, which leads with it.
    bulk_reply = models.ForeignKey(
        BulkReply, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    constituent = models.ForeignKey("constituents.Constituent", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=RecipientState.choices, default=RecipientState.PENDING)
    skip_reason = models.CharField(max_length=16, choices=SkipReason.choices, blank=True)
    body = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(default=1)
    encoding = models.CharField(max_length=5, blank=True)
    from_number = models.CharField(max_length=16, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    time_zone_source = models.CharField(max_length=8, blank=True)
    # Not sent before this instant (the scheduled time, or a retry's backoff).
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bulk_reply", "constituent"], name="bulk_recipient_once"),
            models.CheckConstraint(
                condition=models.Q(state__in=RecipientState.values), name="bulk_recipient_state_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(state="skipped", skip_reason__in=SkipReason.values)
                | (~models.Q(state="skipped") & models.Q(skip_reason="")),
                name="bulk_recipient_skip_has_reason",
            ),
        ]
        indexes = [
            # The sender's claim: the next pending rows of one bulk reply, in order.
            models.Index(
                fields=["bulk_reply", "time_zone", "id"],
                condition=models.Q(state="pending"),
                name="bulk_recipient_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bulk_reply_id} → {self.constituent_id}"
