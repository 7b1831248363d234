"""Where a recipient is, in time, and when they may be texted.

A bulk reply must never reach someone in their quiet hours, so each recipient's time zone is resolved from
the best evidence there is: the ZIP of their address, then its state, then the number itself (the ZIP the
carrier reports for it, then its area code), and only then the office's own zone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone

ZoneSource = Literal["zip", "state", "number", "office"]

# Each US state's and territory's main zone (where most of its people live), by USPS code.
STATE_TIME_ZONES: dict[str, str] = {
    "AL": "America/Chicago",
    "AK": "America/Anchorage",
    "AZ": "America/Phoenix",
    "AR": "America/Chicago",
    "CA": "America/Los_Angeles",
    "CO": "America/Denver",
    "CT": "America/New_York",
    "DE": "America/New_York",
    "DC": "America/New_York",
    "FL": "America/New_York",
    "GA": "America/New_York",
    "HI": "Pacific/Honolulu",
    "ID": "America/Boise",
    "IL": "America/Chicago",
    "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago",
    "KS": "America/Chicago",
    "KY": "America/New_York",
    "LA": "America/Chicago",
    "ME": "America/New_York",
    "MD": "America/New_York",
    "MA": "America/New_York",
    "MI": "America/Detroit",
    "MN": "America/Chicago",
    "MS": "America/Chicago",
    "MO": "America/Chicago",
    "MT": "America/Denver",
    "NE": "America/Chicago",
    "NV": "America/Los_Angeles",
    "NH": "America/New_York",
    "NJ": "America/New_York",
    "NM": "America/Denver",
    "NY": "America/New_York",
    "NC": "America/New_York",
    "ND": "America/Chicago",
    "OH": "America/New_York",
    "OK": "America/Chicago",
    "OR": "America/Los_Angeles",
    "PA": "America/New_York",
    "RI": "America/New_York",
    "SC": "America/New_York",
    "SD": "America/Chicago",
    "TN": "America/Chicago",
    "TX": "America/Chicago",
    "UT": "America/Denver",
    "VT": "America/New_York",
    "VA": "America/New_York",
    "WA": "America/Los_Angeles",
    "WV": "America/New_York",
    "WI": "America/Chicago",
    "WY": "America/Denver",
    "PR": "America/Puerto_Rico",
    "VI": "America/St_Thomas",
    "GU": "Pacific/Guam",
    "AS": "Pacific/Pago_Pago",
    "MP": "Pacific/Saipan",
}

_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers says when it cannot tell


def recipient_time_zone(
    *, zip_code: str, state: str, carrier_zip: str, phone: str, fallback: str
) -> tuple[str, ZoneSource]:
    """The IANA zone a recipient is most likely in, and what it was learned from.

    In order: the first five digits of the address's ZIP, the address's state, the ZIP the carrier reports
    for the number, the number's own zone when phonenumbers names exactly one (a US area code usually does;
    toll-free and some overlays name many), and last the office's zone (``fallback``). Input that is blank
    or malformed at any step only moves on to the next one; nothing here raises.
    """
    zone = _zip_zone(zip_code)
    if zone:
        return zone, "zip"
    zone = STATE_TIME_ZONES.get(state.strip().upper(), "")
    if zone:
        return zone, "state"
    zone = _zip_zone(carrier_zip) or _number_zone(phone)
    if zone:
        return zone, "number"
    return fallback, "office"


def _zip_zone(zip_code: str) -> str:
    head = zip_code.strip()[:5]
    if len(head) != 5 or not (head.isascii() and head.isdigit()):  # noqa: PLR2004 (a ZIP has five digits)
        return ""
    return _zone_of_zip(head)


@functools.lru_cache(maxsize=65_536)
def _zone_of_zip(head: str) -> str:
    """The zone of one five-digit ZIP, or "" when the data has none or names something that is not a zone
    (99634 says "Napakiak"; such ZIPs resolve by their state instead).

    One lookup per distinct ZIP per process: ``zipcodes.matching`` scans its table (a few milliseconds), and
    an office's recipients share few ZIPs (a district has dozens to a few hundred). The whole table as Python
    dicts (``zipcodes.list_all``) would cost a worker some 140 MB, kept for its lifetime."""
    rows: list[dict[str, Any]] = zipcodes.matching(head)  # type: ignore[no-untyped-call]  # wrapper unannotated
    zone = str(rows[0].get("timezone") or "") if rows else ""
    return zone if zone and _known_zone(zone) else ""


@functools.lru_cache(maxsize=65_536)
def _number_zone(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return ""
    zones = [zone for zone in phone_timezone.time_zones_for_number(number) if zone != _UNKNOWN_ZONE]
    if len(zones) != 1 or not _known_zone(zones[0]):
        return ""
    return zones[0]


@functools.cache
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours in which nobody is texted: quiet from ``starts`` (included) until ``ends``
    (excluded). The window may wrap midnight (21:00-08:00) or not (13:00-14:00); equal times mean no quiet
    hours at all."""

    starts: time
    ends: time

    def is_quiet(self, at: datetime, zone: str) -> bool:
        """True if ``at`` (aware) falls in the quiet hours of local time in ``zone``."""
        return self._quiet_at(_local(at, zone).time())

    def next_allowed(self, at: datetime, zone: str) -> datetime:
        """``at`` itself if it is not quiet in ``zone``; else the first instant after it (in UTC) when local
        time there reaches ``ends``.

        On a day whose clocks skip ``ends`` (spring forward), that is the first instant after the gap; on a
        day that repeats it (fall back), its first occurrence after ``at``.
        """
        local = _local(at, zone)
        if not self._quiet_at(local.time()):
            return at
        day = local.date() if local.time() < self.ends else local.date() + timedelta(days=1)
        return _first_reaching(day, self.ends, _zone(zone), after=at)

    def _quiet_at(self, wall: time) -> bool:
        if self.starts <= self.ends:
            return self.starts <= wall < self.ends
        return wall >= self.starts or wall < self.ends


def _local(at: datetime, zone: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} is naive; quiet hours need an aware datetime")
    return at.astimezone(_zone(zone))


def _first_reaching(day: date, wall: time, tz: ZoneInfo, *, after: datetime) -> datetime:
    """The first instant later than ``after`` at which the local clock in ``tz`` shows ``wall`` on ``day``,
    or, if the clock skips it that day, the instant it jumps past it."""
    naive = datetime.combine(day, wall)
    for fold in (0, 1):
        candidate = naive.replace(tzinfo=tz, fold=fold)
        instant = candidate.astimezone(UTC)
        exists = instant.astimezone(tz).replace(tzinfo=None) == naive
        if exists and instant > after:
            return instant
    # In a gap, fold=1 reads the wall time with the offset after the transition, fold=0 with the one
    # before: the transition lies between the two. Search it to the second (zone transitions fall on whole
    # seconds): the first instant whose local time is past ``wall``.
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    high = int(naive.replace(tzinfo=tz, fold=0).timestamp()) + 1
    while low < high:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(low, UTC)
