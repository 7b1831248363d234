"""Conversations, and every message that flows through them, across channels."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from constituents.models import Constituent
from offices.models import Office

HEX_COLOR_VALIDATOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #1f6feb.")
SEARCH_CONFIG = "english"


class TagKind(models.TextChoices):
    ISSUE = "issue", "Issue"  # a policy topic officials see in summaries, e.g. "Health care"
    LABEL = "label", "Label"  # a workflow marker, e.g. "Needs follow-up"


class Tag(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=8, choices=TagKind.choices, default=TagKind.ISSUE)
    color = models.CharField(max_length=7, default="#1f6feb", validators=[HEX_COLOR_VALIDATOR])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("office", Lower("name"), name="tag_name_unique_per_office_ci"),
            models.CheckConstraint(condition=models.Q(kind__in=TagKind.values), name="tag_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(color__regex=r"^#[0-9a-fA-F]{6}$"), name="tag_color_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TriageQueue(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("office", Lower("name"), name="queue_name_unique_per_office_ci")
        ]

    def __str__(self) -> str:
        return self.name


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"  # waiting on the constituent or on someone outside the office
    SNOOZED = "snoozed", "Snoozed"
    CLOSED = "closed", "Closed"


class Priority(models.IntegerChoices):
    LOW = 0, "Low"
    NORMAL = 1, "Normal"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class Stance(models.TextChoices):
    """Where the constituent stands on what they wrote about; blank while nobody (staff, a rule, a campaign)
    has said."""

    SUPPORT = "support", "Support"
    OPPOSE = "oppose", "Oppose"
    NEUTRAL = "neutral", "Neutral"


class Channel(models.TextChoices):
    SMS = "sms", "Text"
    MMS = "mms", "Picture message"
    CALL = "call", "Call"
    VOICEMAIL = "voicemail", "Voicemail"
    NOTE = "note", "Internal note"


class Conversation(models.Model):
    """One thread with one constituent. At most one thread per constituent is not closed."""

    # No single-column indexes on these two: the composite indexes below lead with them (conv_office_* and
    # conv_constituent_recent), and every new message rewrites this row into every index it has.
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="conversations", db_index=False)
    constituent = models.ForeignKey(
        Constituent, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    status = models.CharField(
        max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue = models.ForeignKey(
        TriageQueue, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    stance = models.CharField(max_length=8, choices=Stance.choices, blank=True)
    tags: models.ManyToManyField[Tag, ConversationTag] = models.ManyToManyField(
        Tag, through="ConversationTag", related_name="conversations", blank=True
    )
    # Denormalised for the inbox list, so a page is one indexed query.
    last_activity_at = models.DateTimeField(default=timezone.now)
    last_message_preview = models.CharField(max_length=160, blank=True)
    last_message_channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    staff_read_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    auto_ack_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["constituent"],
                condition=~models.Q(status=ConversationStatus.CLOSED),
                name="conversation_one_unclosed_per_constituent",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=ConversationStatus.values), name="conversation_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ConversationStatus.SNOOZED)
                | models.Q(snoozed_until__isnull=False),
                name="conversation_snoozed_has_until",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=0, priority__lte=3), name="conversation_priority"
            ),
        ]
        indexes = [
            # The inbox's three hot paths: latest activity per office+status, per assignee, per queue.
            models.Index(
                "office",
                "status",
                models.F("last_activity_at").desc(),
                models.F("id").desc(),
                name="conv_office_status_activity",
            ),
            models.Index(
                "office",
                "assignee",
                "status",
                models.F("last_activity_at").desc(),
                models.F("id").desc(),
                name="conv_office_assignee_activity",
            ),
            models.Index(
                "office",
                "queue",
                "status",
                models.F("last_activity_at").desc(),
                models.F("id").desc(),
                name="conv_office_queue_activity",
            ),
            models.Index(
                "office",
                models.F("last_activity_at").desc(),
                models.F("id").desc(),
                name="conv_office_activity",
            ),
            models.Index(fields=["constituent", "-created_at"], name="conv_constituent_recent"),
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(status=ConversationStatus.SNOOZED),
                name="conv_snoozed_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.pk} with {self.constituent_id}"

    @property
    def is_unread(self) -> bool:
        return self.last_inbound_at is not None and (
            self.staff_read_at is None or self.staff_read_at < self.last_inbound_at
        )


class ConversationTag(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "tag"], name="conversation_tag_once")]
        indexes = [models.Index(fields=["tag", "conversation"], name="conversation_tag_by_tag")]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.conversation_id}"


class Direction(models.TextChoices):
    INBOUND = "inbound", "From the constituent"
    OUTBOUND = "outbound", "To the constituent"
    INTERNAL = "internal", "Internal"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Not delivered"
    FAILED = "failed", "Failed"
    READ = "read", "Read"
    # The send may or may not have reached Twilio (e.g. a crash after the API call). The reconciler asks
    # Twilio; such a message is never resent blindly.
    UNKNOWN = "unknown", "Unknown: being checked"
    CANCELED = "canceled", "Canceled"


# Delivery status only moves forward in rank. Terminal outcomes share a rank: the first one
# to arrive wins, and only "read" can follow them.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.UNKNOWN: 1,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.CANCELED: 3,
    MessageStatus.READ: 4,
}
FAILED_STATUSES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.CANCELED})


# ``Message.details[PACED_BY_KEY]`` names what sends a queued message at its own pace (a bulk reply, within
# its number's rate and its recipient's waking hours): the sweeper leaves such a message to it.
PACED_BY_KEY = "paced_by"


class Message(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    # Indexed by message_thread_order, which leads with it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=10, choices=Direction.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    body = models.TextField(blank=True)
    # Twilio's MessageSid / CallSid / RecordingSid. Unique: a webhook delivered twice stores one row.
    provider_sid = models.CharField(max_length=34, unique=True, null=True, blank=True)
    status = models.CharField(max_length=12, choices=MessageStatus.choices)
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    from_number = models.CharField(max_length=32, blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Makes a staff reply idempotent: a double-submitted form creates one message.
    idempotency_key = models.CharField(max_length=64, blank=True)
    num_segments = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Channel-specific details (voice menu path, answered-by, raw provider fields) that no query filters on.
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)
    # Inbound follow-up work (keywords, auto-reply, media) is pending until this is set; the sweeper
    # re-enqueues rows left pending, so the Celery queue is never the only record of work to do.
    processed_at = models.DateTimeField(null=True, blank=True)
    # Times a worker began that follow-up work one message at a time, counted (and committed) before it ran,
    # so a start whose worker died counts too; past CELERY_TASK_MAX_DELIVERIES the message is dead-lettered
    # instead of killing every drain that reaches it (messages.services.processing). A plain
    # SmallIntegerField: a "positive" one adds a CHECK constraint, which PostgreSQL validates by scanning the
    # whole (largest) table under an exclusive lock; adding a column with a constant default is only a
    # catalog change.
    processing_starts = models.SmallIntegerField(default=0)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    # The body's full-text document, computed and stored by PostgreSQL on write, for the inbox search:
    # checking a message against a search reads it instead of running to_tsvector (docs/architecture.md).
    search_document = models.GeneratedField(
        expression=SearchVector("body", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["office", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="message_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(direction__in=Direction.values), name="message_direction_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=Channel.values), name="message_channel_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=MessageStatus.values), name="message_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_thread_order"),
            # The inbox search's index (messages.selectors.search): on the stored document, so a phrase
            # search's recheck reads the column instead of re-parsing every candidate body.
            GinIndex(fields=["search_document"], name="message_search_document"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(processed_at__isnull=True, direction="inbound"),
                name="message_inbound_unprocessed",
            ),
            models.Index(
                fields=["created_at"],
                condition=models.Q(status__in=["queued", "sending", "unknown"], direction="outbound"),
                name="message_outbound_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.channel} {self.provider_sid or self.pk}"


def media_upload_to(instance: Media, filename: str) -> str:
    return f"offices/{instance.office_id}/media/{instance.message_id}/{instance.index}-{filename}"


class MediaStatus(models.TextChoices):
    PENDING = "pending", "Downloading"
    STORED = "stored", "Stored"
    REJECTED = "rejected", "Rejected"  # wrong type, too large, or from a host we do not trust
    FAILED = "failed", "Failed"


class Media(models.Model):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="media")
    index = models.PositiveSmallIntegerField()
    provider_url = models.URLField(max_length=500)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to=media_upload_to, blank=True, max_length=300)
    status = models.CharField(max_length=10, choices=MediaStatus.choices, default=MediaStatus.PENDING)
    error = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "index"]
        verbose_name_plural = "media"
        constraints = [
            models.UniqueConstraint(fields=["message", "index"], name="media_index_once_per_message")
        ]

    def __str__(self) -> str:
        return f"Media {self.index} of message {self.message_id}"


class StatusCallback(models.Model):
    """Every raw delivery-status callback, kept. One for a SID we do not know yet waits, unapplied."""

    office = models.ForeignKey(Office, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    provider_sid = models.CharField(max_length=34, db_index=True)
    status = models.CharField(max_length=16)
    error_code = models.IntegerField(null=True, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(applied_at__isnull=True),
                name="status_callback_parked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_sid} → {self.status}"


class EventKind(models.TextChoices):
    STATUS = "status", "Status changed"
    ASSIGNED = "assigned", "Assigned"
    QUEUE = "queue", "Moved queue"
    TAGGED = "tagged", "Tagged"
    UNTAGGED = "untagged", "Untagged"
    PRIORITY = "priority", "Priority changed"
    CONSENT = "consent", "SMS consent changed"
    REDACTED = "redacted", "Message redacted"


class ConversationEvent(models.Model):
    """Who changed what on a conversation, and when: the non-message half of the timeline."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "created_at"], name="event_thread_order")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.conversation_id}"


class CorrectionKind(models.TextChoices):
    REDACTION = "redaction", "Redaction"


class MessageCorrection(models.Model):
    """A change to what a message says, made after the fact (messages.services.corrections): who, when,
    why, what it says now, and what it said before.

    ``original_body`` is kept for the office's records-retention duties and is never shown in the inbox;
    in the admin only superusers see it. A message has at most one redaction.
    """

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="corrections")
    kind = models.CharField(max_length=12, choices=CorrectionKind.choices, default=CorrectionKind.REDACTION)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, as they were named then: the record outlives the account.
    by_username = models.CharField(max_length=150)
    reason = models.CharField(max_length=500)
    original_body = models.TextField()
    replacement = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message"],
                condition=models.Q(kind="redaction"),
                name="message_correction_one_redaction",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=CorrectionKind.values), name="message_correction_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of message {self.message_id}"


class BulkAction(models.Model):
    """One bulk close over many conversations, kept so that it can be undone for a while.

    ``conversation_ids`` are the conversations the action changed (not the ones already closed). Undoing it
    (``messages.services.bulk.bulk_close_undo``) reopens only those still closed by it: each one's close event
    names this record in ``data["bulk_action"]``; a later status event, or a reopening by a new text,
    means someone or something changed it since."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="+", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=10)
    conversation_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["office", "-created_at"], name="bulk_action_office_recent")]

    def __str__(self) -> str:
        return f"{self.action} of {len(self.conversation_ids)} at {self.created_at:%Y-%m-%d %H:%M}"


class CannedResponse(models.Model):
    """A reply staff insert in one keystroke. Merge fields such as ``{first_name}`` are filled per
    conversation by messages.services.canned (plain text substitution, never ``str.format``)."""

    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="canned_responses")
    title = models.CharField(max_length=100)
    body = models.TextField(max_length=1600)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint("office", Lower("title"), name="canned_title_unique_per_office_ci"),
        ]

    def __str__(self) -> str:
        return self.title
