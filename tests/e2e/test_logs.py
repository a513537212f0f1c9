"""Logs never carry a secret: every log the suite wrote is searched for every secret it used."""

from __future__ import annotations

import re

import pytest

from tests.support.observability import log_files
from tests.support.secrets import SECRETS_USED


@pytest.mark.last  # tests/conftest.py runs it after every other test of the run
def test_no_log_the_suite_wrote_holds_a_secret_it_used(tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    logs = list(log_files(root))
    assert any(path.name == "suite.log" for path in logs), (
        "the suite's own log (tests/conftest.py) is missing"
    )
    # A secret counts only as a whole token: a six-digit code may occur inside a hex task id by chance.
    patterns = {s: re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])") for s in SECRETS_USED}
    found = [
        f"{path.relative_to(root)}: a secret of {len(secret)} characters ({secret[:2]}...)"
        for path in logs
        for text in [path.read_text(errors="replace")]
        for secret, pattern in patterns.items()
        if pattern.search(text)
    ]
    assert not found, found
