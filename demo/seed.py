"""The demo office: a realistic, deterministic data set for trying civicdesk without a Twilio account.

``demo_seed`` creates, in one transaction, the office "Office of Rep. Jordan Rivera" (slug ``demo``), its two
numbers, five users, tags, queues, ~300 constituents and ~2,000 messages in ~600 conversations spread over
the last 60 days, and its voice hotline (an English and a Spanish IVR menu, and a call-in campaign that is
switched off: ``demo.seed_voice``). It lives in the demo app, above every product app, because it writes
to all of them (offices, constituents, messages, voice).

The demo users share one published password (:data:`DEMO_PASSWORD`). That is why the seed refuses to run
unless ``settings.DEMO_MODE`` is true: a deployment must never gain logins whose password is in the README.

Rows are built in Python and written with ``bulk_create``: the demo data is already "processed", so no
service runs per message, no task is enqueued and nothing is sent. Every denormalised inbox field is
computed from the messages built here, exactly as ``conversation_touch`` would have left it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, Min, OuterRef, Subquery
from django.utils import timezone
from faker import Faker

from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from demo.seed_letters import demo_letters_ensure
from demo.seed_voice import DEMO_STAFF_NUMBERS, demo_voice_ensure
from messages.models import (
    Channel,
    Conversation,
    ConversationStatus,
    ConversationTag,
    Direction,
    Media,
    MediaStatus,
    Message,
    MessageStatus,
    Priority,
    Tag,
    TagKind,
    TriageQueue,
)
from messages.segments import segment_info
from messages.services.threading import conversation_summary_fold, is_system_message, touch_for
from offices.models import (
    IvrOption,
    Membership,
    NumberType,
    Office,
    OfficeHours,
    OfficePhoneNumber,
    Role,
    Weekday,
)
from voice.models import CallInCampaign
from voice.services.calls import call_preview

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DEMO_OFFICE_SLUG = "demo"
# Demo-only: printed on every start and written in the README. Never use it for a real deployment.
DEMO_PASSWORD = "civicdesk-demo"  # noqa: S105 - a published demo credential, by design
SEED = 2026
DAYS = 60
BATCH_SIZE = 500
# Any constant works: it only has to be the same for every process that seeds.
_ADVISORY_LOCK_KEY = 0x5EED_DE70

LONG_CODE = "+14155550100"
TOLL_FREE = "+18005550100"


class DemoSeedError(Exception):
    """The demo cannot be seeded here; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role | None  # None: no membership (the superuser)
    is_staff: bool = False
    is_superuser: bool = False
    # The phone the member answers the hotline's forwarded calls on (one of the demo IVR's dial numbers).
    phone: str = ""

    @property
    def role_label(self) -> str:
        if self.is_superuser:
            return "Django admin for every office (a member of none: office pages answer 404)"
        assert self.role is not None  # noqa: S101 - every non-superuser demo user has a role
        label = Role(self.role).label
        return f"{label} + Django admin" if self.is_staff else label


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Avery", "Chen", Role.ADMIN, is_staff=True),
    DemoUser("staff", "Sam", "Okafor", Role.STAFF, phone=DEMO_STAFF_NUMBERS[0]),
    DemoUser("staff2", "Riley", "Nguyen", Role.STAFF, phone=DEMO_STAFF_NUMBERS[1]),
    DemoUser("official", "Jordan", "Rivera", Role.OFFICIAL),
    DemoUser("root", "Root", "User", None, is_staff=True, is_superuser=True),
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    created: bool
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def demo_office_exists() -> bool:
    return Office.objects.filter(slug=DEMO_OFFICE_SLUG).exists()


def demo_seed(*, reset: bool = False, now: datetime | None = None) -> SeedResult:
    """Create the demo office and its data once (``reset``: delete it first). Writes only; sends nothing.

    Concurrent calls are serialised by a PostgreSQL advisory lock, so two starts never both seed.
    Raises :class:`DemoSeedError` outside ``DEMO_MODE`` or if a demo number belongs to another office.
    """
    if not settings.DEMO_MODE:
        raise DemoSeedError(
            "the demo creates users with a published password, so it only runs with DEMO_MODE enabled "
            "(civicdesk.settings.local, or DEMO_MODE=true)."
        )
    began = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        if reset:
            _delete_demo()
        elif (office := Office.objects.filter(slug=DEMO_OFFICE_SLUG).first()) is not None:
            # A demo seeded before the voice hotline existed gains it; otherwise this writes nothing.
            added = demo_voice_ensure(office=office)
            added.update(demo_letters_ensure(office=office))
            return SeedResult(created=False, counts=added, seconds=time.perf_counter() - began)
        seeder = _Seeder(now=now or timezone.now())
        counts = seeder.run()
        counts.update(demo_voice_ensure(office=seeder.office))
        counts.update(demo_letters_ensure(office=seeder.office))
    return SeedResult(created=True, counts=counts, seconds=time.perf_counter() - began)


def _delete_demo() -> None:
    """Delete the demo office, its data and the demo users. Conversations first: they PROTECT constituents."""
    office = Office.objects.filter(slug=DEMO_OFFICE_SLUG).first()
    if office is not None:
        Conversation.objects.filter(office=office).delete()
        # Campaigns PROTECT their tag, and language options the menu they switch to: both go before the
        # office's cascade reaches tags and menus.
        CallInCampaign.objects.filter(office=office).delete()
        IvrOption.objects.filter(menu__office=office).delete()
        office.delete()
    get_user_model().objects.filter(username__in=[u.username for u in DEMO_USERS]).delete()


# --- content ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    key: str
    tag: str | None  # the issue tag, if any
    queue: str | None
    is_casework: bool
    weight: int
    inbound: tuple[str, ...]
    replies: tuple[str, ...]


# One line of facts per topic, then what constituents write and what staff answer.
# fmt: off
TOPICS: tuple[Topic, ...] = (
    Topic("health", "Health care", "Policy", is_casework=False, weight=14, inbound=(
        "My insulin went up to $300 a month. What is the congressman doing about drug prices?",
        "Please protect Medicaid funding. My daughter depends on it for her therapy.",
        "I lost my job and my health coverage. Where can I get help finding a plan?",
        "Our community clinic on Mission St might close. Can the office help?",
        "Why does my Medicare Advantage plan keep denying my physical therapy?",
    ), replies=(
        "Thank you for sharing this. Rep. Rivera supports capping insulin at $35 a month and is "
        "pushing to extend it to everyone.",
        "Thanks for writing. Covered California can help you find a plan: coveredca.com or "
        "1-800-300-1506. If you hit a problem, text us back.",
        "We have shared your concerns with our health policy staff. Rep. Rivera is fighting to protect "
        "Medicaid funding.",
    )),
    Topic("immigration", "Immigration", "Casework", is_casework=True, weight=10, inbound=(
        "My husband's green card application has been pending for 14 months. Can you check on it?",
        "I need help with my mother's visitor visa appointment in Manila. It keeps getting pushed back.",
        "My work permit expires next month and the renewal has not come. What can I do?",
        "Can your office help with a naturalization interview that was cancelled?",
    ), replies=(
        "We can make an inquiry with USCIS. Please fill out our privacy release form at the district "
        "office or reply with your email and we will send it.",
        "Thank you. A caseworker will contact you within 2 business days to start an inquiry.",
        "We received your privacy release and have contacted USCIS. We will text you when they respond.",
    )),
    Topic("veterans", "Veterans", "Casework", is_casework=True, weight=8, inbound=(
        "I am a Vietnam veteran and my VA disability claim has been stuck for 8 months.",
        "My father served in Korea. How do we get his medals replaced?",
        "The VA clinic keeps cancelling my appointments. Who can I talk to?",
        "I need help getting my DD-214 so I can apply for a home loan.",
    ), replies=(
        "Thank you for your service. Our veterans caseworker can open an inquiry with the VA. Can you "
        "send us your claim number?",
        "We can request replacement medals from the National Personnel Records Center. A caseworker "
        "will call you this week.",
        "We have contacted the VA liaison about your appointments and will follow up.",
    )),
    Topic("climate", "Climate", "Policy", is_casework=False, weight=9, inbound=(
        "Please support stronger clean energy investment. The wildfire smoke this summer was terrible.",
        "I want Rep. Rivera to oppose new offshore drilling off the California coast.",
        "Sea level rise is threatening the Embarcadero. What is the plan?",
        "Please fund more EV charging in the district. There are none near my apartment.",
    ), replies=(
        "Thank you for writing. Rep. Rivera opposes new offshore drilling and supports clean energy "
        "investment.",
        "Thanks for reaching out. We have shared your concern with our environment staff.",
    )),
    Topic("social_security", "Social Security", "Casework", is_casework=True, weight=8, inbound=(
        "My Social Security check did not arrive this month and nobody answers at the SSA.",
        "I applied for SSDI 10 months ago and have heard nothing.",
        "Social Security says I was overpaid and is taking my whole check. I cannot pay rent.",
        "How do I replace my Social Security card? The office has no appointments.",
    ), replies=(
        "We are sorry to hear this. We can contact the SSA on your behalf. A caseworker will call you.",
        "Please sign our privacy release form so we can look into your SSDI application.",
        "You can ask for a waiver of the overpayment (form SSA-632). Our caseworker can help you file it.",
    )),
    Topic("housing", "Housing", "Policy", is_casework=False, weight=9, inbound=(
        "My rent went up 18% this year. Is there any help for renters in SF?",
        "Please support more affordable housing. Teachers cannot afford to live here.",
        "My landlord is trying to evict me after I asked for repairs. Who can I call?",
        "I am on the Section 8 waitlist for 3 years. Is there anything you can do?",
    ), replies=(
        "Thank you for writing. The SF Tenants Union (415-282-6622) offers free counseling. Rep. Rivera "
        "supports more federal funding for affordable housing.",
        "We are sorry to hear this. The SF Rent Board can help right away: 415-252-4602.",
    )),
    Topic("hr1234_for", "H.R. 1234", "Policy", is_casework=False, weight=12, inbound=(
        "Please vote YES on H.R. 1234. Our water infrastructure is falling apart.",
        "I support H.R. 1234. Clean drinking water should not depend on your zip code.",
        "YES on HR 1234! Please cosponsor.",
        "As a nurse I see the effects of lead pipes. Please support H.R. 1234.",
    ), replies=(
        "Thank you for sharing your support for H.R. 1234. Rep. Rivera is a cosponsor and will vote yes.",
    )),
    Topic("hr1234_against", "H.R. 1234", "Policy", is_casework=False, weight=7, inbound=(
        "Vote NO on H.R. 1234. It is too expensive and adds to the deficit.",
        "I oppose HR 1234. Water should be handled by the states, not Washington.",
        "H.R. 1234 will raise my water bill. Please vote no.",
    ), replies=(
        "Thank you for sharing your view on H.R. 1234. Rep. Rivera reads every message and your position "
        "has been recorded.",
    )),
    Topic("scheduling", None, "Scheduling", is_casework=False, weight=4, inbound=(
        "Could the Congressman speak at our neighborhood association meeting next month?",
        "Our school would love a visit from Rep. Rivera for career day. Who do I ask?",
        "Can I get a meeting with staff about the BART extension?",
    ), replies=(
        "Thank you for the invitation! Please send details to our scheduler and we will get back to you.",
        "We would be glad to meet. Our scheduler will contact you to find a time.",
    )),
    Topic("press", None, "Press", is_casework=False, weight=2, inbound=(
        "Reporter with the Chronicle here. Does Rep. Rivera have a comment on the transit funding vote?",
        "I'm a student journalist. Could I interview someone from the office about housing policy?",
    ), replies=(
        "Thanks for reaching out. Our communications director will call you today.",
    )),
    Topic("passport", None, "Casework", is_casework=True, weight=4, inbound=(
        "My passport has been processing for 11 weeks and I fly to my sister's wedding in 10 days.",
        "Can your office help me get an emergency passport appointment?",
    ), replies=(
        "We can help. Please text us your full name, date of birth, and application locator number.",
        "We contacted the passport agency and they expect to print your passport this week.",
    )),
    Topic("general", None, None, is_casework=False, weight=5, inbound=(
        "Thank you for voting to fund the Presidio trails. We use them every weekend.",
        "What are the office hours for the district office?",
        "Is there a town hall coming up?",
        "Just wanted to say thank you for your work on the infrastructure bill.",
    ), replies=(
        "Thank you for writing! The district office is open Mon-Fri 9am-5pm.",
        "Thanks! Our next town hall is posted on our website, and we will text you the details.",
    )),
)
# fmt: on

FOLLOW_UPS = (
    "My zip is {zip}.",
    "Also, my name is {name}.",
    "I live at {street}, San Francisco.",
    "Please call me if that's easier.",
    "Sorry, one more thing: my case number is {case}.",
    "Thank you for reading this.",
)
THANKS = (
    "Thank you so much!",
    "Thanks, that helps.",
    "OK, I will send the form today.",
    "Great, thank you for the quick answer.",
    "Any update on this?",
    "I still haven't heard anything. Can someone call me?",
)
NOTES = (
    "Logged for the weekly constituent report.",
    "Forwarded to the caseworker.",
    "Privacy release received; inquiry opened with the agency.",
    "Called back, left a voicemail.",
    "Constituent has written before about the same issue.",
    "Agency says 2-3 weeks; snoozing until then.",
    "Flagged for the policy team's weekly summary.",
)
CALL_NOTES = (
    "Spoke with the constituent about {topic}. Sent the privacy release form.",
    "Caller wanted Rep. Rivera's position on {topic}; explained and logged it.",
    "Long call about {topic}. Needs a follow-up from the caseworker.",
    "Caller asked about {topic}; referred to the district office.",
)
VOICEMAIL_PREFIXES = (
    "Hi, this is {first} calling about {topic}. ",
    "Hello, my name is {name}. ",
    "Yes, hi, I'm calling about {topic}. ",
)
VOICEMAIL_SUFFIX = " Please call me back at this number. Thank you."
# Twilio error codes of failed deliveries, with the reason staff see (as messages.twilio.errors words them).
FAILED_DELIVERY = (
    (30003, "The recipient's phone is unreachable (off or out of coverage)."),
    (30006, "The recipient's number is a landline or cannot receive texts."),
    (30005, "The recipient's number is unknown to the carrier or no longer in service."),
)

TAGS: tuple[tuple[str, str, str], ...] = (
    # name, kind, colour: each has at least 4.5:1 contrast with white (WCAG AA), and no two look alike.
    ("Health care", TagKind.ISSUE, "#0b5cad"),
    ("Immigration", TagKind.ISSUE, "#8250df"),
    ("Veterans", TagKind.ISSUE, "#116329"),
    ("Climate", TagKind.ISSUE, "#0a6e7e"),
    ("Social Security", TagKind.ISSUE, "#9a6700"),
    ("Housing", TagKind.ISSUE, "#bc4c00"),
    ("H.R. 1234", TagKind.ISSUE, "#b3186b"),
    ("Needs follow-up", TagKind.LABEL, "#57606a"),
    ("Casework", TagKind.LABEL, "#6e4b9e"),
    ("Urgent", TagKind.LABEL, "#cf222e"),
)
QUEUES: tuple[tuple[str, str], ...] = (
    ("Casework", "Agency inquiries: federal benefits, immigration, passports, veterans."),
    ("Policy", "Opinions on bills and issues, for the weekly summary."),
    ("Scheduling", "Meeting and event requests."),
    ("Press", "Media inquiries: answer the same day."),
)

# CA-12 is San Francisco. ZIPs in the district, and some just outside it.
IN_DISTRICT_ZIPS = ("94102", "94103", "94107", "94109", "94110", "94114", "94117", "94118", "94121", "94122",
                    "94123", "94124", "94131", "94133")  # fmt: skip
OUT_OF_DISTRICT = (("Oakland", "94601"), ("Daly City", "94014"), ("Berkeley", "94704"), ("San Jose", "95112"),
                   ("Alameda", "94501"), ("South San Francisco", "94080"))  # fmt: skip
# Only the 555-0100..555-0199 block is reserved for fiction in every North American area code.
AREA_CODES = ("415", "628", "510", "650", "408", "925", "707")
STATUS_WEIGHTS = {
    ConversationStatus.OPEN: 36,
    ConversationStatus.PENDING: 14,
    ConversationStatus.SNOOZED: 10,
    ConversationStatus.CLOSED: 40,
}
CONSTITUENTS = 300
CONVERSATIONS = 600
OPTED_OUT = 8


SPOKEN_SUBJECTS = {
    "scheduling": "an invitation",
    "press": "a press question",
    "passport": "a passport",
    "general": "the office",
    "hr1234_for": "H.R. 1234",
    "hr1234_against": "H.R. 1234",
}


def _subject(topic: Topic) -> str:
    """How a caller or a note names the topic: "health care", "H.R. 1234"."""
    return SPOKEN_SUBJECTS.get(topic.key) or (topic.tag or topic.key).lower()


def _sid(rng: random.Random, prefix: str) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


# --- the seeder -------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One conversation and its messages (in order), before anything is written."""

    conversation: Conversation
    messages: list[Message]
    tags: list[str]
    media_on: list[Message] = field(default_factory=list)


class _Seeder:
    def __init__(self, *, now: datetime) -> None:
        self.now = now
        self.rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not a secret
        self.fake = Faker("en_US")
        self.fake.seed_instance(SEED)
        self.account_sid = str(settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32)

    def run(self) -> dict[str, int]:
        taken = list(
            OfficePhoneNumber.objects.filter(e164__in=[LONG_CODE, TOLL_FREE]).values_list("e164", flat=True)
        )
        if taken:
            raise DemoSeedError(
                f"{', '.join(taken)} already belong(s) to another office; numbers are unique per deployment. "
                "Remove that number, or use a fresh database for the demo."
            )
        self.office = self._office()
        self.users = self._users()
        self.staff_users = [self.users["staff"], self.users["staff2"], self.users["admin"]]
        self.tags = {
            t.name: t
            for t in Tag.objects.bulk_create(
                Tag(office=self.office, name=name, kind=kind, color=color) for name, kind, color in TAGS
            )
        }
        self.queues = {
            q.name: q
            for q in TriageQueue.objects.bulk_create(
                TriageQueue(office=self.office, name=name, description=description)
                for name, description in QUEUES
            )
        }
        constituents = self._constituents()
        plans, consent_events = self._conversations(constituents)
        Conversation.objects.bulk_create([p.conversation for p in plans], batch_size=BATCH_SIZE)
        messages = [m for p in plans for m in p.messages]
        Message.objects.bulk_create(messages, batch_size=BATCH_SIZE)
        # Someone who only ever called has given no consent to texts (see ``SmsConsent.NONE``).
        texted = Message.objects.filter(
            conversation__constituent=OuterRef("pk"),
            direction=Direction.INBOUND,
            channel__in=(Channel.SMS, Channel.MMS),
        )
        Constituent.objects.filter(office=self.office, sms_consent=SmsConsent.IMPLIED).exclude(
            Exists(texted)
        ).update(sms_consent=SmsConsent.NONE)
        media = [
            Media(
                office=self.office,
                message=m,
                index=0,
                provider_url=(
                    f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Messages/"
                    f"{m.provider_sid}/Media/{_sid(self.rng, 'ME')}"
                ),
                content_type="image/jpeg",
                status=MediaStatus.FAILED,
                error="Demo data: the picture was not kept.",
            )
            for p in plans
            for m in p.media_on
        ]
        Media.objects.bulk_create(media, batch_size=BATCH_SIZE)
        conversation_tags = [
            ConversationTag(
                conversation=p.conversation, tag=self.tags[name], added_by=p.conversation.assignee
            )
            for p in plans
            for name in p.tags
        ]
        ConversationTag.objects.bulk_create(conversation_tags, batch_size=BATCH_SIZE)
        ConsentEvent.objects.bulk_create(consent_events)
        self._backdate()
        return {
            "users": len(self.users),
            "phone numbers": 2,
            "tags": len(self.tags),
            "queues": len(self.queues),
            "constituents": len(constituents),
            "opted out": len(consent_events),
            "conversations": len(plans),
            "messages": len(messages),
            "media": len(media),
        }

    # --- office, users ---

    def _office(self) -> Office:
        office = Office.objects.create(
            name="Office of Rep. Jordan Rivera",
            slug=DEMO_OFFICE_SLUG,
            official_name="Jordan Rivera",
            official_title="Representative",
            district_label="CA-12",
            time_zone="America/Los_Angeles",
            sms_help_text=(
                "Office of Rep. Jordan Rivera (CA-12). Text us your question; for urgent help call "
                "(415) 555-0100. Reply STOP to opt out."
            ),
            sms_auto_ack_text=(
                "Thanks for contacting Rep. Rivera's office. We read every message. Reply STOP to opt out."
            ),
        )
        OfficePhoneNumber.objects.bulk_create(
            [
                OfficePhoneNumber(
                    office=office, e164=LONG_CODE, label="Main line (texts and calls)",
                    number_type=NumberType.LONG_CODE, sms_enabled=True, voice_enabled=True,
                ),
                OfficePhoneNumber(
                    office=office, e164=TOLL_FREE, label="Toll-free texts",
                    number_type=NumberType.TOLL_FREE, sms_enabled=True, voice_enabled=False,
                ),
            ]
        )  # fmt: skip
        OfficeHours.objects.bulk_create(
            OfficeHours(office=office, weekday=day, opens_at=clock(9), closes_at=clock(17))
            for day in (Weekday.MONDAY, Weekday.TUESDAY, Weekday.WEDNESDAY, Weekday.THURSDAY, Weekday.FRIDAY)
        )
        return office

    def _users(self) -> dict[str, User]:
        user_model = get_user_model()
        existing = {
            u.username: u for u in user_model.objects.filter(username__in=[d.username for d in DEMO_USERS])
        }
        users: dict[str, User] = {}
        password_hash = ""
        for spec in DEMO_USERS:
            user = existing.get(spec.username) or user_model(username=spec.username)
            user.first_name, user.last_name = spec.first_name, spec.last_name
            user.email = f"{spec.username}@demo.civicdesk.invalid"
            user.is_staff, user.is_superuser, user.is_active = spec.is_staff, spec.is_superuser, True
            # One hash for all: the password is the same and published anyway, and each PBKDF2 hash costs
            # about 0.4 s, which would be most of the seed's time.
            if not password_hash:
                user.set_password(DEMO_PASSWORD)
                password_hash = user.password
            else:
                user.password = password_hash
            user.save()
            users[spec.username] = user
        Membership.objects.bulk_create(
            Membership(office=self.office, user=users[spec.username], role=spec.role, phone=spec.phone)
            for spec in DEMO_USERS
            if spec.role is not None
        )
        return users

    # --- constituents ---

    def _constituents(self) -> list[Constituent]:
        rng, fake = self.rng, self.fake
        pool = [f"+1{area}5550{n:03d}" for area in AREA_CODES for n in range(100, 200)]
        pool = [p for p in pool if p not in (LONG_CODE, TOLL_FREE)]
        phones = rng.sample(pool, CONSTITUENTS)
        constituents = []
        for phone in phones:
            roll = rng.random()
            if roll < 0.72:
                city, zip_code = "San Francisco", rng.choice(IN_DISTRICT_ZIPS)
                in_district: bool | None = True if rng.random() < 0.8 else None
            elif roll < 0.92:
                city, zip_code = rng.choice(OUT_OF_DISTRICT)
                in_district = False if rng.random() < 0.8 else None
            else:
                city, zip_code, in_district = "", "", None  # texted in, never said where they live
            first, last = fake.first_name(), fake.last_name()
            constituents.append(
                Constituent(
                    office=self.office,
                    phone=phone,
                    first_name=first if city or rng.random() < 0.5 else "",
                    last_name=last if city or rng.random() < 0.5 else "",
                    email=f"{first}.{last}@example.com".lower() if rng.random() < 0.4 else "",
                    address_line1=fake.street_address() if city and rng.random() < 0.6 else "",
                    city=city,
                    state="CA" if city else "",
                    zip_code=zip_code,
                    in_district=in_district,
                    preferred_language="es" if rng.random() < 0.08 else "en",
                    carrier_city="San Francisco" if phone[2:5] in ("415", "628") else "",
                    carrier_state="CA",
                    carrier_zip="",
                )
            )
        return Constituent.objects.bulk_create(constituents, batch_size=BATCH_SIZE)

    # --- conversations and messages ---

    def _conversations(self, constituents: Sequence[Constituent]) -> tuple[list[_Plan], list[ConsentEvent]]:
        rng = self.rng
        per_constituent = [1] * len(constituents)
        for _ in range(CONVERSATIONS - len(constituents)):
            index = rng.randrange(len(constituents))
            while per_constituent[index] >= 5:
                index = rng.randrange(len(constituents))
            per_constituent[index] += 1
        opted_out = set(rng.sample(range(len(constituents)), OPTED_OUT))
        start, end = self.now - timedelta(days=DAYS), self.now - timedelta(minutes=2)
        plans: list[_Plan] = []
        consent_events: list[ConsentEvent] = []
        for index, (constituent, count) in enumerate(zip(constituents, per_constituent, strict=True)):
            slot = (end - start) / count
            for i in range(count):
                is_last = i == count - 1
                slot_start = start + slot * i
                slot_end = end if is_last else slot_start + slot
                if is_last and index in opted_out:
                    status = ConversationStatus.CLOSED
                elif is_last:
                    status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
                else:
                    status = ConversationStatus.CLOSED
                if status == ConversationStatus.CLOSED:
                    begins = slot_start + (slot_end - slot_start) * rng.uniform(0.0, 0.6)
                else:  # unclosed threads are recent: the last ten days
                    recent = max(slot_start, end - timedelta(days=10))
                    begins = recent + (slot_end - recent) * rng.uniform(0.0, 0.9)
                plan = self._plan(
                    constituent, status, begins=begins, limit=slot_end, opt_out=is_last and index in opted_out
                )
                plans.append(plan)
                if is_last and index in opted_out:
                    stop = plan.messages[-1]
                    constituent.sms_consent = SmsConsent.OPTED_OUT
                    consent_events.append(
                        ConsentEvent(
                            office=self.office, constituent=constituent, previous=SmsConsent.IMPLIED,
                            new=SmsConsent.OPTED_OUT, source=ConsentSource.KEYWORD, keyword="STOP",
                            message_sid=stop.provider_sid or "", note="Demo data",
                        )
                    )  # fmt: skip
        Constituent.objects.filter(pk__in=[c.pk for c in constituents if c.is_opted_out]).update(
            sms_consent=SmsConsent.OPTED_OUT
        )
        return plans, consent_events

    def _plan(
        self,
        constituent: Constituent,
        status: ConversationStatus,
        *,
        begins: datetime,
        limit: datetime,
        opt_out: bool,
    ) -> _Plan:
        rng = self.rng
        topic = rng.choices(TOPICS, weights=[t.weight for t in TOPICS])[0]
        kind = rng.choices(("text", "call", "voicemail"), weights=(78, 12, 10))[0]
        office_number = TOLL_FREE if kind == "text" and rng.random() < 0.2 else LONG_CODE
        assignee = (
            rng.choice(self.staff_users) if status != ConversationStatus.OPEN or rng.random() < 0.5 else None
        )
        if status == ConversationStatus.CLOSED and assignee is None and rng.random() < 0.8:
            assignee = rng.choice(self.staff_users)
        conversation = Conversation(
            office=self.office,
            constituent=constituent,
            status=status,
            assignee=assignee,
            priority=Priority.NORMAL,
        )
        steps = _Steps(self, conversation, constituent, office_number)
        reply_chance = {
            ConversationStatus.CLOSED: 0.9,
            ConversationStatus.PENDING: 1.0,
            ConversationStatus.SNOOZED: 0.85,
            ConversationStatus.OPEN: 0.35,
        }[status]
        replier = assignee or rng.choice(self.staff_users)

        if kind == "text":
            media = rng.random() < 0.06
            first = steps.inbound(
                rng.choice(topic.inbound), gap=0, channel=Channel.MMS if media else Channel.SMS
            )
            if media:
                steps.plan_media.append(first)
            steps.outbound(self.office.sms_auto_ack_text, gap=0.05, by=None)
            if rng.random() < 0.45:
                steps.inbound(self._follow_up(constituent), gap=rng.uniform(1, 30))
        elif kind == "call":
            steps.call(gap=0, answered_by=replier)
            if rng.random() < 0.9:
                call_note = rng.choice(CALL_NOTES).format(topic=_subject(topic))
                steps.note(call_note, replier, gap=rng.uniform(2, 20))
        else:
            steps.voicemail(self._transcript(constituent, topic), gap=0)
        if rng.random() < 0.3:
            steps.note(rng.choice(NOTES), rng.choice(self.staff_users), gap=rng.uniform(10, 600))
        replied = rng.random() < (reply_chance if kind == "text" else reply_chance * 0.5)
        if replied:
            steps.outbound(rng.choice(topic.replies), gap=rng.uniform(20, 2880), by=replier)
            if status == ConversationStatus.OPEN and rng.random() < 0.6:
                steps.inbound(rng.choice(THANKS), gap=rng.uniform(5, 1440))
            elif status == ConversationStatus.CLOSED and rng.random() < 0.35:
                steps.inbound(rng.choice(THANKS[:4]), gap=rng.uniform(5, 600))
        waiting = status in (ConversationStatus.PENDING, ConversationStatus.SNOOZED)
        if waiting and steps.messages[-1].direction == Direction.INBOUND:
            # A constituent writing wakes a pending or snoozed thread, so staff acted after the last one.
            steps.note(rng.choice(NOTES), replier, gap=rng.uniform(10, 240))
        if opt_out:
            steps.inbound("STOP", gap=rng.uniform(10, 2880))

        steps.place(begins=begins, limit=limit)
        self._summarise(conversation, steps.messages, status, limit=limit)

        tags: list[str] = []
        if topic.tag and rng.random() < 0.9:
            tags.append(topic.tag)
        if topic.is_casework:
            tags.append("Casework")
            conversation.priority = Priority.HIGH if rng.random() < 0.25 else Priority.NORMAL
        if status != ConversationStatus.CLOSED and rng.random() < 0.15:
            tags.append("Needs follow-up")
        if rng.random() < 0.04:
            tags.append("Urgent")
            conversation.priority = Priority.URGENT
        elif rng.random() < 0.1:
            conversation.priority = Priority.LOW
        if topic.queue and rng.random() < (0.85 if topic.queue != "Policy" else 0.5):
            conversation.queue = self.queues[topic.queue]
        return _Plan(conversation, steps.messages, tags, steps.plan_media)

    def _summarise(
        self,
        conversation: Conversation,
        messages: Sequence[Message],
        status: ConversationStatus,
        *,
        limit: datetime,
    ) -> None:
        """The denormalised inbox fields, by the one rule every writer of them follows
        (``messages.services.threading``): each message folded in, in order, as the services fold it."""
        rng = self.rng
        last = messages[-1]
        # System messages (the auto-acknowledgement) leave the summary alone; see ``conversation_touch``.
        latest = next((m for m in reversed(messages) if not is_system_message(message=m)), last)
        acks = [m.created_at for m in messages if m.direction == Direction.OUTBOUND and not m.sent_by_id]
        conversation.created_at = messages[0].created_at
        # The story's status is decided already; folding the messages must not wake it, so fold from open.
        conversation.status = ConversationStatus.OPEN
        conversation_summary_fold(
            conversation,
            [
                touch_for(m, preview=call_preview(m) if m.channel == Channel.CALL else None)
                for m in messages
                if not is_system_message(message=m)
            ],
        )
        conversation.status = status
        conversation.auto_ack_sent_at = min(acks) if acks else None
        unread = (
            status == ConversationStatus.OPEN
            and latest.direction == Direction.INBOUND
            and rng.random() < 0.85
        )
        conversation.staff_read_at = (
            None if unread else last.created_at + timedelta(minutes=rng.uniform(1, 90))
        )
        if conversation.staff_read_at is not None:
            conversation.staff_read_at = min(conversation.staff_read_at, self.now)
        if status == ConversationStatus.CLOSED:
            closes = last.created_at + timedelta(minutes=rng.uniform(5, 2880))
            conversation.closed_at = min(closes, last.created_at + (limit - last.created_at) * 0.9)
        elif status == ConversationStatus.SNOOZED:
            conversation.snoozed_until = self.now + timedelta(days=rng.uniform(1, 10))

    def _follow_up(self, constituent: Constituent) -> str:
        return self.rng.choice(FOLLOW_UPS).format(
            zip=constituent.zip_code or "94110",
            name=constituent.full_name or self.fake.name(),
            street=constituent.address_line1 or self.fake.street_address(),
            case=f"{self.rng.randrange(10**8, 10**9)}",
        )

    def _transcript(self, constituent: Constituent, topic: Topic) -> str:
        prefix = self.rng.choice(VOICEMAIL_PREFIXES).format(
            first=constituent.first_name or "a constituent",
            name=constituent.full_name or "a constituent",
            topic=_subject(topic),
        )
        concern = self.rng.choice(topic.inbound)
        return prefix + concern + VOICEMAIL_SUFFIX

    def _backdate(self) -> None:
        """``auto_now_add`` fields were stamped "now" by bulk_create; give them the story's times."""
        first_contact = Subquery(
            Conversation.objects.filter(constituent=OuterRef("pk"))
            .values("constituent")
            .annotate(first=Min("created_at"))
            .values("first")[:1]
        )
        Constituent.objects.filter(office=self.office).update(created_at=first_contact)
        stop_time = Subquery(
            Message.objects.filter(provider_sid=OuterRef("message_sid")).values("created_at")[:1]
        )
        ConsentEvent.objects.filter(office=self.office).update(created_at=stop_time)
        ConversationTag.objects.filter(conversation__office=self.office).update(
            created_at=Subquery(
                Conversation.objects.filter(pk=OuterRef("conversation_id")).values("created_at")[:1]
            )
        )


class _Steps:
    """The messages of one conversation, in order, with the gap (minutes) before each; timed by ``place``."""

    def __init__(
        self, seeder: _Seeder, conversation: Conversation, constituent: Constituent, number: str
    ) -> None:
        self.seeder = seeder
        self.rng = seeder.rng
        self.conversation = conversation
        self.constituent = constituent
        self.number = number
        self.messages: list[Message] = []
        self.gaps: list[float] = []
        self.plan_media: list[Message] = []

    def _add(self, message: Message, gap: float) -> Message:
        self.messages.append(message)
        self.gaps.append(gap)
        return message

    def _base(self, **fields: object) -> Message:
        return Message(office=self.seeder.office, conversation=self.conversation, **fields)

    def inbound(self, body: str, *, gap: float, channel: Channel = Channel.SMS) -> Message:
        return self._add(
            self._base(
                direction=Direction.INBOUND, channel=channel, body=body, status=MessageStatus.RECEIVED,
                provider_sid=_sid(self.rng, "MM" if channel == Channel.MMS else "SM"),
                from_number=self.constituent.phone, to_number=self.number,
                details={"opt_out_type": "", "num_media_declared": 1 if channel == Channel.MMS else 0,
                         "messaging_service_sid": None, "account_sid": self.seeder.account_sid},
            ),
            gap,
        )  # fmt: skip

    def outbound(self, body: str, *, gap: float, by: User | None) -> Message:
        roll = self.rng.random()
        status = (
            MessageStatus.DELIVERED
            if roll < 0.86
            else MessageStatus.SENT
            if roll < 0.94
            else MessageStatus.FAILED
        )
        error_code, error_message = (
            self.rng.choice(FAILED_DELIVERY) if status == MessageStatus.FAILED else (None, "")
        )
        return self._add(
            self._base(
                direction=Direction.OUTBOUND, channel=Channel.SMS, body=body, status=status,
                provider_sid=_sid(self.rng, "SM"), from_number=self.number, to_number=self.constituent.phone,
                sent_by=by, num_segments=segment_info(body).segments, send_attempts=1,
                error_code=error_code, error_message=error_message,
            ),
            gap,
        )  # fmt: skip

    def call(self, *, gap: float, answered_by: User) -> Message:
        # Stored as the staff-answered webhook stores a member who picked up: their name and id.
        return self._add(
            self._base(
                direction=Direction.INBOUND, channel=Channel.CALL, body="", status=MessageStatus.RECEIVED,
                provider_sid=_sid(self.rng, "CA"), from_number=self.constituent.phone, to_number=LONG_CODE,
                duration_seconds=self.rng.randint(45, 900),
                details={
                    "answered_by": answered_by.get_full_name() or answered_by.get_username(),
                    "answered_by_user_id": answered_by.pk, "menu_path": ["1"], "call_status": "completed",
                },
            ),
            gap,
        )  # fmt: skip

    def voicemail(self, transcript: str, *, gap: float) -> Message:
        return self._add(
            self._base(
                direction=Direction.INBOUND, channel=Channel.VOICEMAIL, body=transcript,
                status=MessageStatus.RECEIVED, provider_sid=_sid(self.rng, "RE"),
                from_number=self.constituent.phone, to_number=LONG_CODE,
                duration_seconds=self.rng.randint(12, 110),
                details={"menu_path": ["2"], "transcription_status": "completed"},
            ),
            gap,
        )  # fmt: skip

    def note(self, body: str, by: User, *, gap: float) -> Message:
        return self._add(
            self._base(
                direction=Direction.INTERNAL, channel=Channel.NOTE, body=body, status=MessageStatus.RECEIVED,
                sent_by=by,
            ),
            gap,
        )  # fmt: skip

    def place(self, *, begins: datetime, limit: datetime) -> None:
        """Time each message: ``begins`` plus the gaps, squeezed if need be to end well before ``limit``."""
        offsets, total = [], 0.0
        for gap in self.gaps:
            total += gap
            offsets.append(total)
        room = (limit - begins).total_seconds() / 60 * 0.8
        scale = min(1.0, room / total) if total > 0 else 1.0
        processed = self.seeder.now
        for message, offset in zip(self.messages, offsets, strict=True):
            at = begins + timedelta(minutes=offset * scale)
            message.created_at = at
            message.processed_at = min(at + timedelta(seconds=1), processed)
            if message.direction == Direction.OUTBOUND:
                message.sent_at = at + timedelta(seconds=1)
                message.status_updated_at = at + timedelta(seconds=self.rng.uniform(2, 20))
