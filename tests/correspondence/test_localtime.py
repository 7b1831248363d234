"""Recipients' time zones and quiet hours (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from correspondence.localtime import STATE_TIME_ZONES, QuietHours, recipient_time_zone

OFFICE = "America/Denver"
NIGHT = QuietHours(starts=time(21, 0), ends=time(8, 0))


def _resolve(
    *, zip_code: str = "", state: str = "", carrier_zip: str = "", phone: str = ""
) -> tuple[str, str]:
    return recipient_time_zone(
        zip_code=zip_code, state=state, carrier_zip=carrier_zip, phone=phone, fallback=OFFICE
    )


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- Time zones -----------------------------------------------------------------------------------------


def test_the_zip_decides_first() -> None:
    # A Chicago ZIP beats a California address state, a New York carrier ZIP and a 415 number.
    assert _resolve(zip_code="60601", state="CA", carrier_zip="10001", phone="+14155550100") == (
        "America/Chicago",
        "zip",
    )


@pytest.mark.parametrize(
    ("zip_code", "zone"),
    [
        ("94103", "America/Los_Angeles"),
        ("94103-1234", "America/Los_Angeles"),
        (" 10001 ", "America/New_York"),
        ("85004", "America/Phoenix"),
        ("96813", "Pacific/Honolulu"),
        ("46204", "America/Indiana/Indianapolis"),
    ],
)
def test_zip_codes(zip_code: str, zone: str) -> None:
    assert _resolve(zip_code=zip_code) == (zone, "zip")


@pytest.mark.parametrize(
    ("state", "zone"),
    [
        ("CA", "America/Los_Angeles"),
        ("az", "America/Phoenix"),
        (" HI ", "Pacific/Honolulu"),
        ("IN", "America/Indiana/Indianapolis"),
        ("PR", "America/Puerto_Rico"),
    ],
)
def test_the_address_state_when_the_zip_is_unknown(state: str, zone: str) -> None:
    assert _resolve(zip_code="00000", state=state, phone="+14155550100") == (zone, "state")


def test_every_state_and_territory_has_a_real_zone() -> None:
    territories = {"DC", "PR", "VI", "GU", "AS", "MP"}
    assert len(STATE_TIME_ZONES) == 50 + len(territories)
    assert territories <= STATE_TIME_ZONES.keys()
    for zone in STATE_TIME_ZONES.values():
        ZoneInfo(zone)


def test_a_zip_the_data_gives_no_real_zone_falls_back_to_the_state() -> None:
    # The bundled data names 99634's zone "Napakiak", which is not a zone.
    assert _resolve(zip_code="99634", state="AK") == ("America/Anchorage", "state")


def test_the_carrier_zip_before_the_area_code() -> None:
    assert _resolve(carrier_zip="60601", phone="+14155550100") == ("America/Chicago", "number")


def test_the_area_code_when_it_names_one_zone() -> None:
    assert _resolve(phone="+14155550100") == ("America/Los_Angeles", "number")
    assert _resolve(phone="+1 212 555 0100") == ("America/New_York", "number")


def test_a_toll_free_number_names_many_zones_so_the_office_decides() -> None:
    assert _resolve(phone="+18005550100") == (OFFICE, "office")


def test_a_non_us_number_is_where_its_country_is() -> None:
    assert _resolve(phone="+442071234567") == ("Europe/London", "number")


def test_nothing_known_is_the_office() -> None:
    assert _resolve() == (OFFICE, "office")


@pytest.mark.parametrize(
    "junk", ["", " ", "abc", "9410", "941O3", "٩٤١٠٣", "+", "+999", "++1415", "\x00" * 20]
)
def test_bad_input_never_raises(junk: str) -> None:
    zone, source = recipient_time_zone(
        zip_code=junk, state=junk, carrier_zip=junk, phone=junk, fallback=OFFICE
    )
    assert (zone, source) == (OFFICE, "office")


# --- Quiet hours ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local_hour", "quiet"),
    [
        ("America/New_York", 20, False),
        ("America/New_York", 21, True),
        ("America/Chicago", 23, True),
        ("America/Chicago", 3, True),
        ("America/Los_Angeles", 7, True),
        ("America/Los_Angeles", 8, False),
        ("Pacific/Honolulu", 12, False),
        ("America/Phoenix", 22, True),
    ],
)
def test_is_quiet_reads_the_recipients_own_clock(zone: str, local_hour: int, quiet: bool) -> None:
    at = datetime(2026, 6, 15, local_hour, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert NIGHT.is_quiet(at, zone) is quiet


def test_the_same_instant_is_quiet_in_one_zone_and_not_another() -> None:
    at = _utc(2026, 6, 16, 2)  # 22:00 in New York, 19:00 in Los Angeles
    assert NIGHT.is_quiet(at, "America/New_York")
    assert not NIGHT.is_quiet(at, "America/Los_Angeles")
    assert NIGHT.next_allowed(at, "America/Los_Angeles") == at
    assert NIGHT.next_allowed(at, "America/New_York") == _utc(2026, 6, 16, 12)


def test_at_exactly_ends_is_allowed_and_at_exactly_starts_is_quiet() -> None:
    new_york = ZoneInfo("America/New_York")
    ends = datetime(2026, 6, 15, 8, 0, tzinfo=new_york)
    starts = datetime(2026, 6, 15, 21, 0, tzinfo=new_york)
    assert not NIGHT.is_quiet(ends, "America/New_York")
    assert NIGHT.next_allowed(ends, "America/New_York") == ends
    assert NIGHT.is_quiet(starts, "America/New_York")
    assert NIGHT.is_quiet(ends - timedelta(microseconds=1), "America/New_York")
    assert not NIGHT.is_quiet(starts - timedelta(microseconds=1), "America/New_York")


@pytest.mark.parametrize(
    ("at", "zone", "allowed"),
    [
        # Spring forward, 2027-03-14: the night is an hour shorter, 08:00 is already daylight time.
        (_utc(2027, 3, 14, 6, 30), "America/New_York", _utc(2027, 3, 14, 12)),  # 01:30 EST -> 08:00 EDT
        (_utc(2027, 3, 14, 6, 30), "America/Chicago", _utc(2027, 3, 14, 13)),  # 00:30 CST -> 08:00 CDT
        (_utc(2027, 3, 14, 6, 30), "America/Los_Angeles", _utc(2027, 3, 14, 15)),  # 22:30 PST -> 08:00 PDT
        (_utc(2027, 3, 14, 6, 30), "America/Phoenix", _utc(2027, 3, 14, 15)),  # 23:30 MST -> 08:00 MST
        (_utc(2027, 3, 14, 8, 0), "Pacific/Honolulu", _utc(2027, 3, 14, 18)),  # 22:00 HST -> 08:00 HST
        # Fall back, 2026-11-01: the night is an hour longer, 08:00 is standard time again.
        (_utc(2026, 11, 1, 4, 30), "America/New_York", _utc(2026, 11, 1, 13)),  # 00:30 EDT -> 08:00 EST
        (_utc(2026, 11, 1, 3, 0), "America/Chicago", _utc(2026, 11, 1, 14)),  # 22:00 CDT -> 08:00 CST
        (_utc(2026, 11, 1, 7, 30), "America/Los_Angeles", _utc(2026, 11, 1, 16)),  # 00:30 PDT -> 08:00 PST
        (_utc(2026, 11, 1, 7, 30), "America/Phoenix", _utc(2026, 11, 1, 15)),  # 00:30 MST -> 08:00 MST
    ],
)
def test_next_allowed_across_daylight_saving(at: datetime, zone: str, allowed: datetime) -> None:
    assert NIGHT.is_quiet(at, zone)
    result = NIGHT.next_allowed(at, zone)
    assert result == allowed
    assert result.tzinfo is UTC
    assert result.astimezone(ZoneInfo(zone)).time() == time(8, 0)
    assert not NIGHT.is_quiet(result, zone)


def test_an_end_the_clocks_skip_is_the_first_instant_after_the_gap() -> None:
    # New York, 2027-03-14: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens.
    until_half_past_two = QuietHours(starts=time(21, 0), ends=time(2, 30))
    result = until_half_past_two.next_allowed(_utc(2027, 3, 14, 6, 30), "America/New_York")
    assert result == _utc(2027, 3, 14, 7)
    assert result.astimezone(ZoneInfo("America/New_York")).time() == time(3, 0)


def test_an_end_the_clocks_repeat_is_its_first_occurrence_after_now() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice, in EDT (05:00-06:00 UTC), then in EST (06:00-07:00).
    until_half_past_one = QuietHours(starts=time(21, 0), ends=time(1, 30))
    assert until_half_past_one.next_allowed(_utc(2026, 11, 1, 4, 30), "America/New_York") == _utc(
        2026, 11, 1, 5, 30
    )
    # 01:15 EST, the second pass: quiet again until 01:30 EST.
    second_pass = _utc(2026, 11, 1, 6, 15)
    assert until_half_past_one.is_quiet(second_pass, "America/New_York")
    assert until_half_past_one.next_allowed(second_pass, "America/New_York") == _utc(2026, 11, 1, 6, 30)


def test_a_window_that_does_not_wrap_midnight() -> None:
    lunch = QuietHours(starts=time(12, 0), ends=time(13, 0))
    chicago = ZoneInfo("America/Chicago")
    assert not lunch.is_quiet(datetime(2026, 6, 15, 11, 59, tzinfo=chicago), "America/Chicago")
    assert lunch.is_quiet(datetime(2026, 6, 15, 12, 0, tzinfo=chicago), "America/Chicago")
    assert not lunch.is_quiet(datetime(2026, 6, 15, 13, 0, tzinfo=chicago), "America/Chicago")
    assert not lunch.is_quiet(datetime(2026, 6, 15, 23, 0, tzinfo=chicago), "America/Chicago")
    assert not lunch.is_quiet(datetime(2026, 6, 15, 3, 0, tzinfo=chicago), "America/Chicago")
    assert lunch.next_allowed(datetime(2026, 6, 15, 12, 30, tzinfo=chicago), "America/Chicago") == _utc(
        2026, 6, 15, 18
    )


def test_equal_times_mean_no_quiet_hours() -> None:
    never = QuietHours(starts=time(9, 0), ends=time(9, 0))
    at = datetime(2026, 6, 15, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert not never.is_quiet(at, "America/New_York")
    assert never.next_allowed(at, "America/New_York") == at


def test_any_aware_datetime_is_accepted_and_a_naive_one_is_refused() -> None:
    in_paris_summer = datetime(2026, 6, 16, 4, 0, tzinfo=timezone(timedelta(hours=2)))  # 22:00 in New York
    assert NIGHT.next_allowed(in_paris_summer, "America/New_York") == _utc(2026, 6, 16, 12)
    with pytest.raises(ValueError, match="naive"):
        NIGHT.is_quiet(datetime(2026, 6, 15, 12, 0), "America/New_York")  # noqa: DTZ001 (naive on purpose)
