"""Twilio's webhook field names are spelled only in the boundary packages (messages/twilio/, voice/twilio/).

The names are the ones the form builders write, so a field a builder learns is guarded from then on. Every
string literal of every module outside the boundary is checked (docstrings and comments may name a field;
code may not).
"""

from __future__ import annotations

import ast
from pathlib import Path

from messages.twilio.payloads import inbound_sms_form
from voice.twilio.payloads import (
    CallLeg,
    call_status_form,
    dial_result_form,
    gather_form,
    inbound_call_form,
    record_result_form,
    recording_status_form,
    transcription_form,
)

ROOT = Path(__file__).resolve().parents[3]
APP_PACKAGES = ("common", "offices", "constituents", "messages", "voice", "demo", "civicdesk")
BOUNDARY = (ROOT / "messages" / "twilio", ROOT / "voice" / "twilio")


def builder_field_names() -> set[str]:
    leg = CallLeg(
        account_sid="AC",
        call_sid="CA",
        from_number="f",
        to_number="t",
        parent_call_sid="CA",
        caller_city="c",
        caller_state="s",
        caller_zip="z",
    )
    forms = [
        inbound_sms_form(
            account_sid="AC",
            message_sid="SM",
            from_number="f",
            to_number="t",
            body="b",
            media=[("u", "image/jpeg")],
            messaging_service_sid="MG",
            opt_out_type="STOP",
        ),
        inbound_call_form(leg),
        gather_form(leg, digits="1", speech_result="s", confidence=0.5),
        dial_result_form(leg, dial_call_status="completed", dial_call_sid="CA", dial_call_duration=1),
        record_result_form(leg, recording_url="u", recording_duration=1, digits="#", recording_sid="RE"),
        recording_status_form(
            leg, recording_sid="RE", recording_url="u", recording_status="completed", recording_duration=1
        ),
        transcription_form(
            leg,
            recording_sid="RE",
            recording_url="u",
            transcription_sid="TR",
            transcription_status="completed",
            transcription_text="t",
        ),
        call_status_form(leg, call_status="completed", call_duration=1),
    ]
    return {name for form in forms for name, _ in form}


def docstring_nodes(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def field_names_outside_the_boundary(
    names: set[str], *, root: Path = ROOT, packages: tuple[str, ...] = APP_PACKAGES
) -> list[str]:
    """``path:line: 'Name'``, for each string literal (or f-string literal part) that is a field name."""
    found: list[str] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if any(path.is_relative_to(boundary) for boundary in BOUNDARY):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            docstrings = docstring_nodes(tree)
            found.extend(
                f"{path.relative_to(root)}:{node.lineno}: {node.value!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value in names
            )
    return found


def test_the_builders_write_twilios_field_names() -> None:
    names = builder_field_names()
    assert {
        "AccountSid",
        "CallSid",
        "From",
        "To",
        "Body",
        "Digits",
        "DialCallStatus",
        "RecordingUrl",
    } <= names
    assert {"TranscriptionText", "CallDuration", "MediaUrl0", "MediaContentType0", "ParentCallSid"} <= names


def test_no_module_outside_the_boundary_spells_a_twilio_field_name() -> None:
    names = builder_field_names() | {"MediaUrl", "MediaContentType"}
    assert field_names_outside_the_boundary(names) == []


def test_the_scan_finds_a_field_name_where_one_is_spelled(tmp_path: Path) -> None:
    """The scan above really reads string literals and skips only docstrings: it finds a module's fields."""
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "post.py").write_text(
        '"""Posts ``CallSid`` and ``From``."""\n\n'
        "def form(sid, index, url):\n"
        '    """The ``To`` field is not spelled here."""\n'
        '    return [("CallSid", sid), (f"MediaUrl{index}", url)]\n'
    )
    names = {"CallSid", "From", "To", "MediaUrl"}
    found = field_names_outside_the_boundary(names, root=tmp_path, packages=("sim",))
    assert found == ["sim/post.py:5: 'CallSid'", "sim/post.py:5: 'MediaUrl'"]
