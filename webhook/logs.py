"""Logging: structlog set-up and the vocabulary of log keys, declared once.

Every admission request produces exactly one canonical line (`admission`), bound with the
request's identity. Output is JSON when stdout is not a terminal (a pod's log collector
reads it) and coloured key=value text when a person is watching.

That line is written for every review, so its cost is part of every admission's: the
pieces below (orjson rendering, a timestamp formatted once a second, one flush per event
loop turn) about halve it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

# The canonical admission line's keys, in the order a reader scans them.
UID = "uid"
WEBHOOK = "webhook"
KIND = "kind"
NAMESPACE = "namespace"
NAME = "name"
OPERATION = "operation"
USER = "user"
ALLOWED = "allowed"
VIOLATIONS = "violations"
WARNINGS = "warnings"
PATCH_OPERATIONS = "patch_operations"
DURATION_MS = "duration_ms"
REASON = "reason"
DRY_RUN = "dry_run"

LEVELS = ("debug", "info", "warning", "error")


def _dumps(event: dict[str, Any], **options: Any) -> str:
    """One JSON line, by orjson: the canonical line is written for every admission, and
    the standard library's encoder took as long as judging a small pod. Values orjson
    cannot write (integers past 64 bits, keys that are not strings) go the slow way."""
    try:
        return orjson.dumps(event, default=options.get("default")).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event, **options)


class _UTCTimestamp:
    """The processor `TimeStamper(fmt="iso", utc=True)`, to the character, at a quarter
    of its cost: the date and time up to the second are formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._second, self._prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        micro = nanoseconds // 1000
        # isoformat() leaves the fraction out when it is zero; so does this.
        event["timestamp"] = f"{self._prefix}.{micro:06d}Z" if micro else f"{self._prefix}Z"
        return event


class LineWriter:
    """Writes rendered lines to a stream, flushing once per event-loop turn.

    Inside a running event loop the flush is a callback the loop runs as soon as the
    callbacks already queued have run: under load the lines of many admissions leave in
    one write, and at rest a line still leaves in the turn that wrote it. Outside a loop
    (start-up, the CLI, the role cache's watch thread) each line is flushed at once. A
    stream that can no longer be written (its reader has gone) loses the line rather than
    failing the admission that logged it.

    Never log from a signal handler: it may run while this thread holds the lock.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._scheduled: asyncio.AbstractEventLoop | None = None

    def msg(self, message: str) -> None:
        try:
            with self._lock:
                self._stream.write(message + "\n")
        except (OSError, ValueError):  # a closed pipe or file
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = None
        try:
            with self._lock:
                self._stream.flush()
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class LineWriterFactory:
    """structlog's logger factory for `LineWriter`: one writer per stream."""

    def __init__(self, stream: TextIO) -> None:
        self._writer = LineWriter(stream)

    def __call__(self, *args: Any) -> LineWriter:
        return self._writer


def configure_logging(level: str = "info", *, json_output: bool | None = None) -> None:
    """Set up structlog (and the standard library's loggers, which uvicorn uses)."""
    if json_output is None:
        json_output = not sys.stdout.isatty()
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _UTCTimestamp(),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if json_output else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=LineWriterFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # uvicorn's own lines go through the same renderer, so a pod's log stays one format.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if json_output else structlog.dev.set_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One canonical line per admission replaces uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str = "bulwark") -> Any:
    return structlog.get_logger(name)
