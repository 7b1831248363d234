"""Every ``type: ignore`` names its error code and says why, on the same line.

mypy enforces the code (``enable_error_code = ["ignore-without-code"]``); this test enforces the reason:
``# type: ignore[attr-defined]  # django-stubs lacks X``. It reads comments only (through ``tokenize``), so
strings that mention the pragma, like the ones below, are not counted.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Not ours to annotate: the virtualenv, the engines' data, generated migrations, caches.
SKIPPED_DIRS = {".venv", ".data", ".git", "migrations", "staticfiles", "node_modules", "__pycache__"}

PRAGMA = re.compile(r"#\s*type:\s*ignore\b")
# The code in brackets, then a second comment with some text: the reason.
WITH_CODE_AND_REASON = re.compile(r"#\s*type:\s*ignore\[[a-z0-9-]+(\s*,\s*[a-z0-9-]+)*\]\s*#\s*\S")


def python_files(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(directory) / name


def unexplained_ignores(source: str) -> list[tuple[int, str]]:
    """(line, comment) for each ``type: ignore`` comment lacking an error code or a reason."""
    return [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
        and PRAGMA.search(token.string)
        and not WITH_CODE_AND_REASON.search(token.string)
    ]


@pytest.mark.parametrize(
    ("line", "explained"),
    [
        ("x = f()  # type: ignore[attr-defined]  # django-stubs lacks f\n", True),
        ("x = f()  # type: ignore[method-assign,assignment]  # a counting wrapper\n", True),
        ("x = f()  # type: ignore[attr-defined]\n", False),
        ("x = f()  # type: ignore[attr-defined]  #\n", False),
        ("x = f()  # type: ignore\n", False),
        ("x = f()  # type: ignore  # no code given\n", False),
        ('x = "# type: ignore"  # a string, not a pragma\n', True),
    ],
)
def test_the_check_itself(line: str, explained: bool) -> None:
    assert (unexplained_ignores(line) == []) is explained


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    files = list(python_files(REPO))
    assert Path(__file__) in files  # the walk reaches the tests
    problems = [
        f"{path.relative_to(REPO)}:{line}: {comment}"
        for path in files
        for line, comment in unexplained_ignores(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "type: ignore without an error code and a reason:\n" + "\n".join(problems)
