"""A pytest plugin: a civicdesk test never skips. A skip (pytest.skip, skipif, importorskip) is a failure.

A skipped test looks like a pass in a summary, so a missing tool (a browser, a binary) would quietly turn a
check off. Loaded for every run through ``addopts`` in pyproject.toml.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"civicdesk tests never skip; this one skipped: {reason}"
    return report
