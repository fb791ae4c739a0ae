"""Logging: structlog set-up and the vocabulary of log keys, declared once.

Every admission request produces exactly one canonical line (`admission`), bound with the
request's identity. Output is JSON when stdout is not a terminal (a pod's log collector
reads it) and coloured key=value text when a person is watching.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

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


def configure_logging(level: str = "info", *, json_output: bool | None = None) -> None:
    """Set up structlog (and the standard library's loggers, which uvicorn uses)."""
    if json_output is None:
        json_output = not sys.stdout.isatty()
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if json_output else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
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
