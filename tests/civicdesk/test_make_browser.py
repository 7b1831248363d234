"""README command 2 sets up its own browser: `make browser`, a step of `make test`, installs or stops."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _make_browser(tmp_path: Path, *, uid: str) -> subprocess.CompletedProcess[str]:
    # A PATH with no chromium and no apt-get: only a stand-in `id` that reports the given user id.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_id = bin_dir / "id"
    fake_id.write_text(f"#!/bin/sh\necho {uid}\n")
    fake_id.chmod(0o755)
    return subprocess.run(
        ["/usr/bin/make", "--no-print-directory", "-C", str(ROOT), "browser"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_make_test_stops_before_pytest_naming_the_install_command_when_it_cannot_install(tmp_path):
    result = _make_browser(tmp_path, uid="1000")
    assert result.returncode != 0
    assert "sudo apt-get install chromium" in result.stderr
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("make test needs Debian's chromium")
    assert all(line.startswith("make: ***") for line in rest)  # make's own exit line, nothing else


def test_make_test_as_root_without_apt_get_also_stops_with_the_command(tmp_path):
    result = _make_browser(tmp_path, uid="0")
    assert result.returncode != 0
    assert "sudo apt-get install chromium" in result.stderr
