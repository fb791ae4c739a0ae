"""Fixtures shared by the whole suite.

Public test data (the upstream pod-security-admission fixtures, the gatekeeper-library
samples, the handed admission cases) is read from `../shared` beside the repository and
never copied into it. A user's clone has no `../shared`; the tests that need it skip and
say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# In CI the property tests draw the same examples on every run, so that a red build always
# means a change broke something, never that this run happened upon an old fault. Run on a
# developer's machine they draw new examples each time and keep exploring; a failure found
# there is replayed from .hypothesis/ until it is fixed.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The `../shared` folder with the public fixtures and handed cases."""
    if not (SHARED / "fixtures").is_dir():
        pytest.skip(f"no public fixtures at {SHARED} (they sit beside the repository in CI)")
    return SHARED
