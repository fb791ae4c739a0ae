"""Logging: structlog set-up and the vocabulary of log keys, declared once.

Every admission request produces exactly one canonical line (`admission`), bound with the
request's identity. Output is JSON when stdout is not a terminal (a pod's log collector
reads it) and coloured key=value text when a person is watching.

That line is written for every review, so its cost is part of every admission's: the
pieces below (orjson rendering, a timestamp formatted once a second, a flush every 50 ms
rather than every line) cut it to a fraction.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import select
import sys
import threading
import time
from collections.abc import Iterator
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
        self._cached = (-1, "")  # one attribute, so that threads never see half an update

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event["timestamp"] = self.text(time.time_ns())
        return event

    def text(self, time_ns: int) -> str:
        """`time_ns` (nanoseconds since the epoch) as the timestamp of a line."""
        second, nanoseconds = divmod(time_ns, 1_000_000_000)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._cached = (second, prefix)
        micro = nanoseconds // 1000
        # isoformat() leaves the fraction out when it is zero; so does this.
        return f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"


# How long a line written inside the event loop may wait before it is written out. A
# write is a write(2) to the pod's log pipe: once per admission it cost a fifth of a
# one-container pod's review. Written at most every 50 ms (or once 64 KiB are waiting),
# the lines of many admissions leave in one write. A process killed outright (SIGKILL,
# the OOM killer) loses at most that last 50 ms of lines; a clean stop writes them all.
FLUSH_AFTER_SECONDS = 0.05
FLUSH_AT_CHARACTERS = 64 * 1024
EVENT_CHARACTERS = 400  # about the length of a deferred event's line, for the count above
# With `--workers N` every worker writes to the same log pipe, and the kernel keeps a write
# to a pipe whole only up to PIPE_BUF bytes: a longer one, made while the pipe is full (a
# log collector falling behind), is interleaved with other workers' writes and cuts their
# lines apart. So no JSON line is longer than this (`_fitted` cuts its longest values:
# a pod of sixty privileged containers lists over a hundred violations), and a batch
# leaves in writes of whole lines of at most this many bytes.
ATOMIC_WRITE_BYTES = select.PIPE_BUF


_WRITE_OUT_STAMP = _UTCTimestamp()


def _rendered(line: str | dict[str, Any]) -> str:
    """A waiting line as text. Never raises: rendering happens in a write-out, where an
    exception would lose the whole batch and every line after it."""
    if isinstance(line, str):
        return line
    stamp = line.get("timestamp")
    if type(stamp) is int:
        line["timestamp"] = _WRITE_OUT_STAMP.text(stamp)
    try:
        return _dumps(line, default=repr)  # `repr` for a value JSON has no type for
    except Exception as error:  # noqa: BLE001 - a key JSON cannot hold, an integer too long
        event = line.get("event")
        return _dumps(
            {
                "event": event if isinstance(event, str) else "(unnamed)",
                "level": "error",
                "error": f"this line could not be written as JSON ({type(error).__name__})",
            }
        )


def _fitted(line: str, limit: int = ATOMIC_WRITE_BYTES - 1) -> str:
    """`line` within `limit` bytes: a JSON object too long has its longest values cut (a
    string to half, with the count of characters cut; a list to half, with the count of
    items) until it fits, and `"truncated": true` added. Other text is left as it is: only
    JSON lines go to a pipe that workers share."""
    if len(line) * 4 <= limit or len(line.encode()) <= limit:
        return line
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if type(event) is not dict or not event:
        return line
    event["truncated"] = True
    for _ in range(64):  # each round halves the longest value
        key = max(event, key=lambda name: len(_dumps(event[name], default=repr)))
        event[key] = _halved(event[key])
        text = _dumps(event, default=repr)
        if len(text.encode()) <= limit:
            return text
    return _dumps({"event": str(event.get("event")), "truncated": True})


def _halved(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 40:
        kept = len(value) // 2
        return f"{value[:kept]}... ({len(value) - kept} characters more)"
    if isinstance(value, list) and len(value) > 1:
        kept = len(value) // 2
        return [*value[:kept], f"... ({len(value) - kept} more)"]
    return "(too long to log)"


class LineWriter:
    """Collects rendered lines and writes them to a stream together, soon rather than at once.

    The lines wait here, not in the stream's buffer, so that batching holds even when the
    stream writes through (PYTHONUNBUFFERED=1, as container images often set). Inside a
    running event loop the first line after a write schedules the next one
    `FLUSH_AFTER_SECONDS` later. Outside a loop (start-up, the CLI, the role cache's watch
    thread) each line is written at once, with the ones waiting before it; at exit whatever
    waits is written. A stream that can no longer be written (its reader has gone) loses
    the lines rather than failing the admission that logged them.

    Never log from a signal handler: it may run while this thread holds the lock.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._waiting: list[str | dict[str, Any]] = []
        self._waiting_characters = 0
        self._scheduled: asyncio.AbstractEventLoop | None = None
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        self._add(message, len(message))

    def defer(self, event: dict[str, Any]) -> None:
        """Write `event` as a JSON line, rendered when it is written out.

        The canonical admission line goes this way: rendered with the others of its batch,
        in one tight loop, it costs an admission a quarter less than rendered at once (the
        encoder's code and tables are warm). `event` must not change after this call. A
        `timestamp` given as an int (`time.time_ns()`) is written as structlog's
        `TimeStamper(fmt="iso", utc=True)` writes one, also when the line is written out.
        """
        self._add(event, EVENT_CHARACTERS)

    def _add(self, line: str | dict[str, Any], characters: int) -> None:
        with self._lock:
            self._waiting.append(line)
            self._waiting_characters += characters
            full = self._waiting_characters >= FLUSH_AT_CHARACTERS
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if full or loop is None:
            self.flush()
        elif self._scheduled is not loop:
            self._scheduled = loop
            loop.call_later(FLUSH_AFTER_SECONDS, self.flush)

    def flush(self) -> None:
        with self._lock:
            self._scheduled = None
            if not self._waiting:
                return
            text = "\n".join([_fitted(_rendered(line)) for line in self._waiting]) + "\n"
            self._waiting.clear()
            self._waiting_characters = 0
            with contextlib.suppress(OSError, ValueError):  # a closed pipe or file
                self._write(text)

    def _write(self, text: str) -> None:
        """`text`, whole lines of it at a time, each write at most `ATOMIC_WRITE_BYTES`."""
        stream = self._stream
        binary = getattr(stream, "buffer", None)
        if binary is None:  # a stream of text alone (tests): no pipe to share
            stream.write(text)
            stream.flush()
            return
        stream.flush()  # what was printed before goes first
        data = text.encode(stream.encoding or "utf-8", "backslashreplace")
        for piece in _whole_lines(data, ATOMIC_WRITE_BYTES):
            binary.write(piece)
            binary.flush()  # one write(2) per piece: it is smaller than the buffer

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _whole_lines(data: bytes, limit: int) -> Iterator[memoryview]:
    """`data` cut after line breaks into pieces of at most `limit` bytes (a longer line
    is a piece of its own)."""
    view = memoryview(data)
    start = 0
    while len(data) - start > limit:
        end = data.rfind(b"\n", start, start + limit) + 1
        if end <= start:  # one line longer than `limit`
            end = data.find(b"\n", start + limit) + 1 or len(data)
        yield view[start:end]
        start = end
    if start < len(data):
        yield view[start:]


class _WriterHandler(logging.Handler):
    """Sends the standard library's records (uvicorn's) through the same `LineWriter`, so
    they keep their place among Bulwark's own lines."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.msg(self.format(record))
        except Exception:  # noqa: BLE001 - as logging.StreamHandler does
            self.handleError(record)


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
    factory = LineWriterFactory(sys.stdout)
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
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    log_admission.configure(json_output=json_output, level=numeric, writer=factory())
    # uvicorn's own lines go through the same renderer, so a pod's log stays one format.
    handler = _WriterHandler(factory())
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


class _CanonicalLine:
    """Writes the `admission` line: the one line that every review costs.

    In JSON mode it bypasses structlog's chain (which merges the context variables, copies
    the event and calls four processors per line) and is handed to the writer as an event,
    rendered with its batch (`LineWriter.defer`), to the same keys and timestamp. Its keys
    keep the caller's order (the request's identity first), then `event`, `level` and
    `timestamp`. In console mode, and before logging is configured, it goes through
    structlog like any other line.
    """

    def __init__(self) -> None:
        self._direct: LineWriter | None = None
        self._enabled = True

    def configure(self, *, json_output: bool, level: int, writer: LineWriter) -> None:
        self._enabled = level <= logging.INFO
        self._direct = writer if json_output else None

    def reset(self) -> None:
        """Back to going through structlog, as before `configure_logging`."""
        self._direct, self._enabled = None, True

    def __call__(self, fields: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if self._direct is None:
            get_logger("bulwark.admission").info("admission", **fields)
            return
        fields["event"] = "admission"
        fields["level"] = "info"
        fields["timestamp"] = time.time_ns()  # formatted when written out
        self._direct.defer(fields)


# `log_admission({UID: ..., WEBHOOK: ..., ...})` writes the canonical line.
log_admission = _CanonicalLine()
