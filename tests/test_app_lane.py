"""The admission endpoints as ASGI applications: error mapping, mounting and the log line."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.reviews import pod, review
from webhook import app as app_module
from webhook import logs
from webhook.app import ServerState, create_app
from webhook.config import Settings


def _post(asgi: Any, path: str, body: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="https://bulwark") as client:
            return await client.post(path, json=body)

    return asyncio.run(call())


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    logs.configure_logging("info", json_output=True)
    yield stream
    structlog.reset_defaults()
    logs.log_admission.reset()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    structlog.get_config()["logger_factory"]().flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_bug_outside_the_policies_is_a_500_json_error_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    def broken(body: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "decode_review", broken)
    answer = _post(create_app(ServerState(settings=Settings())), "/validate", review(pod()))
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error: RuntimeError; see the server log"}
    failed = [line for line in _lines(log_stream) if line["event"] == "request_failed"]
    assert len(failed) == 1
    assert "RuntimeError: boom" in failed[0]["exception"]


def test_a_mounted_app_answers_admissions_as_the_direct_lane_does() -> None:
    inner = create_app(ServerState(settings=Settings()))
    outer = Starlette(routes=[Mount("/hooks", app=inner)])
    body = review(pod(privileged=True), uid="mounted")
    direct = _post(inner, "/validate", body)
    mounted = _post(outer, "/hooks/validate", body)
    assert mounted.status_code == direct.status_code == 200
    assert mounted.json() == direct.json()
    assert mounted.json()["response"]["allowed"] is False


def test_the_admission_line_carries_what_structlogs_chain_would_identity_first(
    log_stream: io.StringIO,
) -> None:
    fields = {logs.UID: "u-1", logs.WEBHOOK: "validate", logs.KIND: "Pod", logs.ALLOWED: True}
    logs.log_admission(dict(fields))
    with structlog.contextvars.bound_contextvars(uid="u-1", webhook="validate"):
        logs.get_logger("bulwark.admission").info("admission", kind="Pod", allowed=True)
    direct, chained = _lines(log_stream)
    assert list(direct)[:2] == ["uid", "webhook"]
    assert direct.pop("timestamp").endswith("Z")
    assert chained.pop("timestamp").endswith("Z")
    assert direct == chained


def test_the_admission_line_is_left_out_below_info_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    logs.configure_logging("warning", json_output=True)
    try:
        logs.log_admission({logs.UID: "quiet"})
        structlog.get_config()["logger_factory"]().flush()
    finally:
        structlog.reset_defaults()
        logs.log_admission.reset()
    assert stream.getvalue() == ""
