"""The HTTP layer: Starlette routes, body limits, error mapping and the canonical log line.

Two failure channels are kept apart. A call Bulwark cannot answer (not JSON, not an
AdmissionReview, too large, wrong content type) is an HTTP 4xx with `{"error": ...}`.
A well-formed review is always answered 200 with an AdmissionReview, even when a policy
raised: the API server then sees a denial that names the policy, never a broken reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from webhook import logs
from webhook.admission import mutate, validate
from webhook.config import Settings
from webhook.errors import BadReview, BulwarkError
from webhook.evaluate import TooManyObjects, evaluate_body
from webhook.metrics import Metrics
from webhook.podspec import POD_CARRYING_KINDS
from webhook.review import Review, decode_review, dump_json, encode_response
from webhook.verdict import NoRoles, RoleSource, Verdict

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
JSON_TYPES = ("application/json", "application/json-patch+json")
# Kinds named in metric labels; anything else is counted as "other" so labels stay bounded.
KNOWN_KINDS = POD_CARRYING_KINDS | {
    "Ingress",
    "IngressRoute",
    "RoleBinding",
    "ClusterRoleBinding",
}

log = logs.get_logger("bulwark.admission")


@dataclass
class ServerState:
    """What the running server knows beyond its settings; read by /readyz."""

    settings: Settings
    roles: RoleSource = field(default_factory=NoRoles)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    metrics: Metrics = field(default_factory=Metrics)
    certificate_ok: Callable[[], bool] = lambda: True
    roles_synced: Callable[[], bool] = lambda: True
    draining: bool = False
    # `POST /evaluate` bodies judged in a thread: one at a time.
    evaluations: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(dump_json(body), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return _json(status, {"error": message})


async def receive_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`.

    A declared Content-Length is checked before anything is read; a chunked body is
    counted while it arrives, so an oversized upload never sits in memory whole.
    """
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise HTTPException(413, f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # The API server gave up (its timeout) or the peer hung up mid-body.
            raise HTTPException(400, "the client disconnected before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _record(state: ServerState, webhook: str, review: Review, verdict: Verdict) -> None:
    kind = review.request.kind.kind
    metrics = state.metrics
    metrics.count_request(
        webhook,
        review.request.operation,
        kind if kind in KNOWN_KINDS else "other",
        verdict.allowed,
    )
    if verdict.has_violations:
        for enforcement, violation in verdict.by_enforcement():
            metrics.count_violation(violation.policy, violation.check, enforcement)
    for policy, error in verdict.failed_policies:
        metrics.count_error(policy)
        log.error(
            "policy_failed",
            **{logs.UID: review.request.uid, logs.WEBHOOK: webhook},
            policy=policy,
            exc_info=error,
        )


def _log_admission(webhook: str, review: Review, verdict: Verdict, started: float) -> None:
    request = review.request
    logs.log_admission(
        {
            logs.UID: request.uid,
            logs.WEBHOOK: webhook,
            logs.KIND: request.kind.kind,
            logs.NAMESPACE: verdict.namespace,
            logs.NAME: verdict.name,
            logs.OPERATION: request.operation,
            logs.USER: request.user_info.username,
            logs.ALLOWED: verdict.allowed,
            logs.VIOLATIONS: [f"{v.policy}/{v.check}" for v in verdict.all_violations]
            if verdict.has_violations
            else [],
            logs.WARNINGS: len(verdict.warnings),
            logs.PATCH_OPERATIONS: len(verdict.patch),
            logs.DRY_RUN: request.dry_run,
            logs.REASON: verdict.reason,
            logs.DURATION_MS: round((time.perf_counter() - started) * 1000, 3),
        }
    )


# Reviews larger than this are judged in a worker thread. The API server sends at most
# 3 MiB, and a pod with thousands of containers takes a good part of a second; on a thread
# the event loop keeps answering /healthz and the small reviews in between (the GIL is
# handed over every few milliseconds). Typical reviews (2-150 KB) stay on the loop, where
# the hop to a thread would cost more than the judging.
THREADED_REVIEW_BYTES = 256 * 1024


def _judge(state: ServerState, webhook: str, body: bytes) -> tuple[Review, Verdict]:
    """The review in `body` and the engine's verdict on it; safe on a worker thread."""
    review = decode_review(body)
    if webhook == "mutate":
        return review, mutate(review.request, state.settings)
    return review, validate(review.request, state.settings, roles=state.roles)


class AdmissionEndpoint:
    """`POST /validate` or `POST /mutate`, as a bare ASGI application.

    Every admission of the cluster comes through here, so it reads the two headers it needs
    straight from the scope and sends its two messages itself: Starlette's request and
    response objects, routing and error middleware took a third of the application's time
    for a one-container pod. It maps errors as the rest of the app does (see the module
    docstring), and an error that is a bug is logged and answered 500 with a JSON error.
    """

    def __init__(self, webhook: str, state: ServerState) -> None:
        self.webhook = webhook
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state = self.state
        try:
            body = await self._body(scope, receive)
            if len(body) > THREADED_REVIEW_BYTES:
                review, verdict = await run_in_threadpool(_judge, state, self.webhook, body)
            else:
                review, verdict = _judge(state, self.webhook, body)
            mutating = self.webhook == "mutate"
            reply = dump_json(encode_response(review, verdict, with_patch=mutating))
            status = 200
            # Metrics and the log line on the loop's thread only (see webhook.metrics).
            _record(state, self.webhook, review, verdict)
            _log_admission(self.webhook, review, verdict, started)
        except HTTPException as refusal:
            status, reply = refusal.status_code, dump_json({"error": refusal.detail})
        except (BadReview, BulwarkError) as error:
            status, reply = 400, dump_json({"error": str(error)})
        except asyncio.CancelledError:
            # The drain's deadline passed while this request was still arriving or being
            # judged on a thread. Answer it rather than leave uvicorn to send a bare 500.
            message = "the server stopped before the request was complete; send it again"
            status, reply = 503, dump_json({"error": message})
        except Exception as error:  # a bug outside the policies (the engine catches those)
            log.error("request_failed", path=scope["path"], exc_info=error)
            message = f"internal error: {type(error).__name__}; see the server log"
            status, reply = 500, dump_json({"error": message})
        else:
            state.metrics.observe_duration(self.webhook, time.perf_counter() - started)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(reply))]
        if state.draining:
            headers.append((b"connection", b"close"))  # the next request goes elsewhere
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": reply})

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        """The body of a JSON request, from one pass over the headers."""
        content_type = declared = None
        for name, value in scope["headers"]:
            if name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value.decode("latin-1")
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type not in JSON_TYPES:
            raise HTTPException(
                415, f"expected Content-Type application/json, got {content_type or ''!r}"
            )
        return await receive_body(receive, declared, self.state.max_body_bytes)


# `POST /evaluate` media types, and whether each is JSON only (the others are sniffed: text
# opening with `{"` is read as JSON, anything else as YAML, as kubectl does).
EVALUATE_TYPES = {
    "application/yaml": False,
    "application/x-yaml": False,
    "text/yaml": False,
    "text/plain": False,
    "": False,
    "application/json": True,
}
# Larger bodies are judged in a worker thread, so that admission requests arriving
# meanwhile are not held up behind them. Measured: 16 KiB of manifests take about 3 ms
# to judge, 64 KiB about 12 ms; the hop to a thread costs about 0.2 ms.
EVALUATE_INLINE_BYTES = 16 * 1024
# A `POST /evaluate` body's limit, below the admission one: reading manifests takes far more
# memory than their text (PyYAML's nodes, for the documents libyaml reads, take over a
# hundred times their size), and only one request is judged at a time (see `evaluate`).
EVALUATE_MAX_BODY_BYTES = 2 * 1024 * 1024


async def evaluate(request: Request) -> Response:
    """Judge the manifests in the body as the webhooks would; the `evaluate` JSON report."""
    state: ServerState = request.app.state.bulwark
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in EVALUATE_TYPES:
        raise HTTPException(415, f"expected YAML or JSON manifests, got {content_type!r}")
    declared = request.headers.get("content-length")
    limit = min(state.max_body_bytes, EVALUATE_MAX_BODY_BYTES)
    body = await receive_body(request.receive, declared, limit)
    judge = partial(
        evaluate_body,
        body,
        state.settings,
        namespace=request.query_params.get("namespace") or "default",
        operation=request.query_params.get("operation") or "CREATE",
        json=EVALUATE_TYPES[media_type],
        cluster_roles=state.roles,
    )
    if len(body) <= EVALUATE_INLINE_BYTES:
        report = judge()
    else:  # one at a time, in a thread: its memory is bounded, and admissions go on
        report = await anyio.to_thread.run_sync(judge, limiter=state.evaluations)
    return Response(report, media_type="application/json")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    state: ServerState = request.app.state.bulwark
    problems = []
    if state.draining:
        problems.append("shutting down")
    if not state.certificate_ok():
        problems.append("the served certificate has expired")
    if not state.roles_synced():
        problems.append("the role cache has not synced with the API server")
    if problems:
        return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", status_code=503)
    return PlainTextResponse("ok")


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.bulwark
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, str(error.detail))


async def _bad_review(request: Request, error: Exception) -> Response:
    return error_response(400, str(error))


async def _too_many_objects(request: Request, error: Exception) -> Response:
    return error_response(413, str(error))


async def _unexpected(request: Request, error: Exception) -> Response:
    # Reached only by a bug outside the policies (those are caught by the engine).
    log.error("request_failed", path=request.url.path, exc_info=error)
    return error_response(500, f"internal error: {type(error).__name__}; see the server log")


ERROR_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    HTTPException: _http_error,
    BadReview: _bad_review,
    TooManyObjects: _too_many_objects,
    BulwarkError: _bad_review,
    Exception: _unexpected,
}


class _WebhookApp(Starlette):
    """Starlette, with POST /validate and /mutate handed straight to their endpoints.

    Those endpoints are bare ASGI applications and are routed by Starlette too (a GET is
    a 405); this only skips the middleware stack and router on the path every admission
    takes. A mounted app (root_path) and an app given middleware go through Starlette.
    """

    def __init__(self, *, lanes: dict[str, AdmissionEndpoint], **options: Any) -> None:
        super().__init__(**options)
        self._lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            lane = self._lanes.get(scope["path"])
            if lane is not None and not scope.get("root_path") and not self.user_middleware:
                await lane(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(state: ServerState, *, extra_routes: list[Route] | None = None) -> Starlette:
    """The ASGI application serving the admission, evaluation and health endpoints."""
    lanes = {
        "/validate": AdmissionEndpoint("validate", state),
        "/mutate": AdmissionEndpoint("mutate", state),
    }
    routes = [
        Route("/validate", lanes["/validate"], methods=["POST"]),
        Route("/mutate", lanes["/mutate"], methods=["POST"]),
        Route("/evaluate", evaluate, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *(extra_routes or []),
    ]
    app = _WebhookApp(lanes=lanes, routes=routes, exception_handlers=ERROR_HANDLERS)
    # `/validate/` is a 404, not a redirect to a Location built from the client's Host.
    app.router.redirect_slashes = False
    app.state.bulwark = state
    return app
