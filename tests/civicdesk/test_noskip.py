"""The no-skip plugin (tests/noskip.py): a skipped test fails the run, with the skip's reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_skipped_test_fails_the_run_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n"
        "def test_passes():\n    assert True\n\n"
        "def test_skips():\n    pytest.skip('chromium is missing')\n\n"
        "@pytest.mark.skipif(True, reason='no openssl')\n"
        "def test_skipif():\n    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
         "-p", "tests.noskip", "-c", "/dev/null", "--rootdir", str(tmp_path), str(tmp_path / "test_skips.py"),
         ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    # A skip in the test body fails the test; a skipif (decided at setup) is reported as an error.
    assert "1 failed, 1 passed, 1 error" in result.stdout
    assert "civicdesk tests never skip; this one skipped: chromium is missing" in result.stdout
    assert "civicdesk tests never skip; this one skipped: no openssl" in result.stdout
