"""Fixtures shared by the whole suite.

Public test data (the upstream pod-security-admission fixtures, the gatekeeper-library
samples, the handed admission cases) is read from `../shared` beside the repository and
never copied into it. A user's clone has no `../shared`; the tests that need it skip and
say so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The `../shared` folder with the public fixtures and handed cases."""
    if not (SHARED / "fixtures").is_dir():
        pytest.skip(f"no public fixtures at {SHARED} (they sit beside the repository in CI)")
    return SHARED
