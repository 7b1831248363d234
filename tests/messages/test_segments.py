from __future__ import annotations

import pytest

from messages.segments import (
    GSM7_BASIC_CHARS,
    GSM7_EXTENSION_CHARS,
    MAX_BODY_LENGTH,
    SegmentInfo,
    is_gsm7,
    segment_info,
    validate_body,
)


def test_gsm7_tables_have_the_standard_sizes():
    # 128 code points in the default alphabet minus ESC; 10 extension characters incl. form feed and euro.
    assert len(GSM7_BASIC_CHARS) == 127
    assert len(GSM7_EXTENSION_CHARS) == 10
    assert not GSM7_BASIC_CHARS & GSM7_EXTENSION_CHARS


def test_empty_body_is_zero_segments():
    assert segment_info("") == SegmentInfo("GSM-7", 0, 0, 160, 160)


@pytest.mark.parametrize(
    ("length", "segments", "per_segment", "remaining"),
    [(1, 1, 160, 159), (160, 1, 160, 0), (161, 2, 153, 145), (306, 2, 153, 0), (307, 3, 153, 152)],
)
def test_gsm7_boundaries(length, segments, per_segment, remaining):
    info = segment_info("a" * length)
    assert info.encoding == "GSM-7"
    assert (info.characters, info.segments, info.per_segment, info.remaining_in_segment) == (
        length,
        segments,
        per_segment,
        remaining,
    )


@pytest.mark.parametrize(
    ("length", "segments", "per_segment", "remaining"),
    [(70, 1, 70, 0), (71, 2, 67, 63), (134, 2, 67, 0), (135, 3, 67, 66)],
)
def test_ucs2_boundaries(length, segments, per_segment, remaining):
    info = segment_info("ж" * length)
    assert info.encoding == "UCS-2"
    assert (info.characters, info.segments, info.per_segment, info.remaining_in_segment) == (
        length,
        segments,
        per_segment,
        remaining,
    )


def test_one_non_gsm_character_makes_the_whole_message_ucs2():
    info = segment_info("a" * 100 + "\u2019")  # a curly apostrophe
    assert info.encoding == "UCS-2"
    assert info.segments == 2


def test_gsm7_extension_characters_count_double():
    info = segment_info("{}[]~^|\\€\f")
    assert info.encoding == "GSM-7"
    assert info.characters == 20


def test_extension_character_is_not_split_across_segments():
    # 152 plain characters then "€": the escape pair cannot straddle the 153-septet boundary.
    info = segment_info("a" * 152 + "€" + "a" * 10)
    assert info.characters == 164
    assert info.segments == 2
    assert info.remaining_in_segment == 153 - 12


def test_emoji_counts_two_utf16_code_units():
    info = segment_info("😀")
    assert (info.encoding, info.characters, info.segments, info.remaining_in_segment) == ("UCS-2", 2, 1, 68)


def test_surrogate_pair_is_not_split_across_segments():
    info = segment_info("ж" * 66 + "😀" * 3)  # 66 + 6 = 72 units; the first emoji would straddle unit 67
    assert info.segments == 2
    assert info.remaining_in_segment == 67 - 6


def test_gsm_specials_such_as_newline_and_accented_letters_stay_gsm7():
    assert is_gsm7("Hello\nÉlise, ¿qué tal? £5 @home")
    assert not is_gsm7("café ☕")
    assert not is_gsm7("\x1b")  # ESC alone is not sendable text


def test_validate_body_accepts_1600_characters():
    validate_body("x" * MAX_BODY_LENGTH)


def test_validate_body_rejects_more_than_1600_characters_with_a_clear_message():
    with pytest.raises(ValueError, match=r"1601 characters long; the limit is 1600"):
        validate_body("x" * 1601)


def test_validate_body_counts_python_characters_not_utf16_units():
    validate_body("😀" * 1600)
