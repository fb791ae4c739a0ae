"""Fixtures of the end-to-end suite: one real etcd + kube-apiserver per pytest session.

Every test under tests/e2e/ is marked ``e2e`` (select with ``-m e2e``, leave out with
``-m "not e2e"``). The binaries are built, if not cached, right after collection, so a
cold build (minutes) is not charged to the first test's timeout; without a Go toolchain
the tests skip and say why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import controlplane as cp

HERE = Path(__file__).resolve().parent
_build: dict[str, Any] = {}


def _in_e2e(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _in_e2e(item):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not any(_in_e2e(i) for i in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(msg: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[e2e] {msg}")

    try:
        _build["binaries"] = cp.build(log=say)
    except cp.GoUnavailable as err:
        _build["skip"] = str(err)
    except cp.ControlPlaneError as err:
        _build["error"] = str(err)


def _binaries() -> cp.Binaries:
    if "skip" in _build:
        pytest.skip(_build["skip"])
    if "error" in _build:
        pytest.fail(f"building the e2e control plane failed: {_build['error']}", pytrace=False)
    if "binaries" not in _build:  # collection hook did not run (e.g. another rootdir)
        try:
            _build["binaries"] = cp.build()
        except cp.GoUnavailable as err:
            _build["skip"] = str(err)
            pytest.skip(str(err))
    binaries: cp.Binaries = _build["binaries"]
    return binaries


@pytest.fixture(scope="session")
def control_plane() -> Iterator[cp.ControlPlane]:
    """A started control plane: ``.server``, ``.kubeconfig``, ``.api_client()``,
    ``.ensure_namespace(name)``, ``.pki.issue(...)`` for webhook serving certs."""
    with cp.ControlPlane(_binaries()) as plane:
        yield plane


@pytest.fixture(scope="session")
def api_client(control_plane: cp.ControlPlane) -> Iterator[Any]:
    """A kubernetes.client.ApiClient authenticated as the admin (system:masters)."""
    with control_plane.api_client() as client:
        yield client
