"""The log writer: lines batched inside the event loop, in order, whatever the stream buffers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from webhook import logs
from webhook.logs import FLUSH_AFTER_SECONDS, LineWriter


class CountingStream(io.StringIO):
    """A stream that writes through, as stdout does under PYTHONUNBUFFERED=1."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_logged_inside_the_loop_leave_together_and_in_order() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)

    async def admissions() -> None:
        for number in range(100):
            writer.msg(f"line {number}")
            await asyncio.sleep(0)  # each admission is its own turn of the loop
        assert stream.writes == 0
        await asyncio.sleep(3 * FLUSH_AFTER_SECONDS)

    asyncio.run(admissions())
    assert stream.writes == 1
    assert stream.getvalue().splitlines() == [f"line {number}" for number in range(100)]


def test_deferred_events_are_rendered_as_json_lines_in_their_place_among_the_others() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)

    async def admissions() -> None:
        writer.msg("starting")
        writer.defer({"event": "admission", "uid": "a", "allowed": True})
        writer.msg("between")
        writer.defer({"event": "admission", "uid": "b", "violations": ["pod-security/x"]})
        await asyncio.sleep(3 * FLUSH_AFTER_SECONDS)

    asyncio.run(admissions())
    assert stream.writes == 1
    assert stream.getvalue().splitlines() == [
        "starting",
        '{"event":"admission","uid":"a","allowed":true}',
        "between",
        '{"event":"admission","uid":"b","violations":["pod-security/x"]}',
    ]


def test_a_deferred_event_with_a_value_json_cannot_hold_is_written_with_its_repr() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.defer({"event": "admission", "odd": {1, 2}})
    writer.msg("after")
    assert stream.getvalue().splitlines() == ['{"event":"admission","odd":"{1, 2}"}', "after"]


@pytest.mark.parametrize(
    "unwritable",
    [
        pytest.param({"n": 10**5000}, id="an-integer-too-long-to-print"),
        pytest.param({("a", "tuple"): 1}, id="a-key-json-cannot-hold"),
    ],
)
def test_an_event_that_cannot_be_rendered_is_reported_and_loses_no_other_line(
    unwritable: dict[Any, Any],
) -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.msg("before")
    writer.defer({"event": "admission", **unwritable})
    writer.msg("after")
    writer.flush()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "before"
    assert lines[-1] == "after"
    assert json.loads(lines[1])["event"] == "admission"
    assert "could not be written as JSON" in json.loads(lines[1])["error"]


def test_a_line_logged_outside_a_loop_is_written_at_once_after_those_waiting() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)

    async def one_admission() -> None:
        writer.msg("from the loop")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(one_admission())
    loop.close()  # the scheduled write never runs
    writer.msg("from start-up")
    assert stream.getvalue() == "from the loop\nfrom start-up\n"


def test_a_closed_stream_loses_the_lines_without_raising() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    stream.close()
    writer.msg("nobody reads this")  # must not raise into the admission that logged it


def test_uvicorns_records_keep_their_place_among_bulwarks_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    logs.configure_logging("info", json_output=True)
    try:

        async def serve() -> None:
            logs.get_logger("bulwark").info("first")
            logging.getLogger("uvicorn.error").info("second")
            logs.log_admission({logs.UID: "third"})
            await asyncio.sleep(3 * FLUSH_AFTER_SECONDS)

        asyncio.run(serve())
    finally:
        structlog.reset_defaults()
        logs.log_admission.reset()
    lines = stream.getvalue().splitlines()
    assert ['"first"' in lines[0], '"second"' in lines[1], '"third"' in lines[2]] == [True] * 3


@pytest.mark.parametrize(
    "time_ns",
    [1_796_000_000_123_456_789, 1_796_000_000_000_000_000, 1_796_000_001_000_999_999],
    ids=["with-microseconds", "on-the-second", "under-a-microsecond"],
)
def test_a_timestamp_is_written_as_an_iso_utc_time_with_microseconds(time_ns: int) -> None:
    moment = datetime.fromtimestamp(time_ns // 10**9, UTC).replace(
        microsecond=time_ns % 10**9 // 1000
    )
    assert logs._UTCTimestamp().text(time_ns) == moment.isoformat().replace("+00:00", "Z")


def test_a_deferred_events_nanosecond_timestamp_is_written_in_iso_form() -> None:
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.defer({"event": "admission", "timestamp": 1_796_000_000_123_456_789})
    assert json.loads(stream.getvalue())["timestamp"] == "2026-11-30T00:53:20.123456Z"


# Writes 4,000 lines of about 330 bytes through a LineWriter inside an event loop, where
# they leave in batches of about 64 KiB.
_BATCHING_WRITER = """
import asyncio, sys
from webhook.logs import LineWriter

async def write_lines():
    writer = LineWriter(sys.stdout)
    for number in range(4000):
        pad = "x" * (6000 if number % 10 == 0 else 300)  # every tenth line past PIPE_BUF
        writer.msg('{"writer": "%s", "number": %d, "pad": "%s"}' % (sys.argv[1], number, pad))
    writer.flush()

asyncio.run(write_lines())
"""


def test_two_processes_logging_to_one_slow_pipe_never_cut_each_others_lines() -> None:
    """`serve --workers 2` shares the pod's log pipe: a write of more than PIPE_BUF bytes
    to a full pipe is interleaved with the other process's, so lines leave in writes of
    whole lines of at most PIPE_BUF bytes, and a longer line is cut to fit. The reader
    here falls behind, as a log collector does under load."""
    read_end, write_end = os.pipe()
    writers = [
        subprocess.Popen([sys.executable, "-c", _BATCHING_WRITER, name], stdout=write_end)
        for name in ("a", "b")
    ]
    os.close(write_end)
    received = bytearray()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(3000):
            received += chunk
            time.sleep(0.0002)
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    texts = received.decode().splitlines()
    assert max(len(text.encode()) for text in texts) < select.PIPE_BUF
    lines = [json.loads(text) for text in texts]
    assert len(lines) == 8000
    for name in ("a", "b"):
        numbers = [line["number"] for line in lines if line["writer"] == name]
        assert numbers == list(range(4000))
    cut = [line for line in lines if line.get("truncated")]
    assert len(cut) == 800
    assert all(line["pad"].endswith(" characters more)") for line in cut)


def test_a_line_longer_than_a_pipe_keeps_whole_is_cut_to_fit_as_json() -> None:
    """The longest values are halved until the line fits; the rest stays as it was."""
    from webhook.logs import ATOMIC_WRITE_BYTES, _fitted

    event = {
        "event": "admission",
        "uid": "7f3e2a10",
        "violations": ["pod-security/privileged"] * 400,
        "reason": "r" * 3000,
    }
    line = _fitted(json.dumps(event))
    assert len(line.encode()) < ATOMIC_WRITE_BYTES
    fitted = json.loads(line)
    assert (fitted["event"], fitted["uid"], fitted["truncated"]) == ("admission", "7f3e2a10", True)
    assert fitted["violations"][-1].endswith(" more)")
    short = json.dumps({"event": "admission", "uid": "u"})
    assert _fitted(short) == short
