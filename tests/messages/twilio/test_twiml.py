from __future__ import annotations

import xml.etree.ElementTree as ET

from messages.twilio.twiml import (
    TWIML_CONTENT_TYPE,
    empty_messaging_response,
    empty_voice_response,
    message_response,
)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_empty_messaging_response_is_a_bare_response_element():
    root = parse(empty_messaging_response())
    assert root.tag == "Response"
    assert list(root) == []


def test_message_response_escapes_markup_in_the_body():
    xml = message_response("Tom & Jerry <script>alert(1)</script>")
    assert "<script>" not in xml
    root = parse(xml)
    assert [child.tag for child in root] == ["Message"]
    assert root[0].text == "Tom & Jerry <script>alert(1)</script>"


def test_message_response_drops_characters_xml_cannot_carry():
    xml = message_response("a\x00b\x07c\td\ne")
    root = parse(xml)  # would raise on NUL or BEL
    assert root[0].text == "abc\td\ne"


def test_message_response_keeps_unicode():
    assert parse(message_response("Merci 😀 ¿qué?"))[0].text == "Merci 😀 ¿qué?"


def test_empty_voice_response_is_a_bare_response_element():
    assert parse(empty_voice_response()).tag == "Response"


def test_twiml_content_type_is_xml():
    assert TWIML_CONTENT_TYPE.startswith("text/xml")
