"""A deadline for reading each request whole, which uvicorn does not have.

uvicorn closes a connection that stays idle between requests (its keep-alive timeout), but
none that has begun a request and sends the rest slowly, or never: a peer that opens
connections and sends a few bytes now and then ("slowloris") holds them all open. The API
server sends each review whole as soon as it has connected, so `read_seconds` after a
connection's TLS handshake, or after a read that left a request on a kept-alive one
unfinished, a request that has not fully arrived is not coming from it: the connection is
dropped and the event logged. Handling a request that has arrived is not limited.

The TLS handshake before that has a deadline of its own, `HANDSHAKE_SECONDS`: uvicorn
passes none to the event loop, whose default is 60 s, so `event_loop` makes uvicorn's
uvloop loop with one (uvicorn's `loop` option takes such a factory).

A pipelined request (the API server sends none) is not timed while the one before it is
being answered: its deadline starts again when that answer has been sent.

When the server stops, uvicorn closes at once every connection with no request being
answered on it. One accepted moments before the listener closed has usually not delivered
its first request yet, though its client has sent it: closed then, the client sees the
connection end unanswered. Such a connection (nothing answered on it yet, or a request
partly read) is given `FIRST_REQUEST_SECONDS` more; its answer says `Connection: close`,
as every answer does while the server drains, and uvicorn closes it after that. A
kept-alive connection that has been answered and is idle is closed at once, as before.

Bytes that are not HTTP (a bad Content-Length, both it and chunked encoding, a broken
chunk) get a JSON error, like every other error Bulwark answers, instead of uvicorn's
plain text.

The event loop also gives a peer `SHUTDOWN_SECONDS` to answer the TLS close of a
connection (its default, 30 s, held a drain that long for each idle kept-alive client
that never answers it, as most HTTP client libraries' idle pooled connections do not).

It is uvicorn's httptools protocol with a few of its callbacks extended; tests in
tests/test_server.py hold it to a real server, so a uvicorn release that renames them
fails there rather than in a cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook import logs

log = logs.get_logger("bulwark.server")

# The API server's own timeout for a webhook call is 10 s by default (30 s at most); a
# request it sends arrives within milliseconds of the connection.
DEFAULT_READ_SECONDS = 10.0
# A TLS handshake with the API server takes milliseconds.
HANDSHAKE_SECONDS = 10.0
# How long a TLS close waits for the peer's close_notify before the connection is dropped.
SHUTDOWN_SECONDS = 2.0
INVALID_HTTP = (
    b'{"error": "not a valid HTTP/1.1 request: check its request line, its headers, and '
    b'that its body is as long as its Content-Length says or well chunked, not both"}'
)
# How long, once the server stops, a connection that has not had a request answered yet
# waits for one before it is closed (it holds the drain that long at most).
FIRST_REQUEST_SECONDS = 2.0


_stopping = False  # see `server_stopping`


def server_stopping() -> None:
    """Note that the server has begun to stop. uvicorn asks the connections it knows to
    shut down once; one whose TLS handshake ends later is asked here, as it is made, and
    gets the same wait for its first request instead of the whole read deadline."""
    global _stopping  # noqa: PLW0603 - one server a process
    _stopping = True


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request is not read in time."""

    read_seconds = DEFAULT_READ_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._reading = False  # a request has begun and is not read whole yet
        self._answered = False  # a request has been answered on this connection
        self._late_shutdown: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if _stopping:  # its TLS handshake ended after uvicorn's pass over the connections
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Timed only when the bytes at hand leave a request unfinished: the API server's
        # arrive whole, and cost no timer.
        if self._reading and self._read_deadline is None:
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True

    def on_message_complete(self) -> None:
        self._reading = False
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._answered = True
        super().on_response_complete()
        if self._read_deadline is not None:  # a request waited behind this answer
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._late_shutdown is not None:
            self._late_shutdown.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refused (`msg` says only that), in JSON."""
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(INVALID_HTTP)
        )
        self.transport.write(b"".join(head) + INVALID_HTTP)
        self.transport.close()

    def shutdown(self) -> None:
        """Called by uvicorn when the server stops, and for a connection made after that:
        close it unless a request is being answered on it, or its first request may be on
        its way (see above)."""
        if self._late_shutdown is not None:
            return  # called twice (see `server_stopping`): its wait is already set
        awaited = self.cycle is None and (self._reading or not self._answered)
        if awaited and not self.transport.is_closing():
            self._late_shutdown = self.loop.call_later(FIRST_REQUEST_SECONDS, super().shutdown)
            return
        super().shutdown()

    def _waiting_on_an_answer(self) -> bool:
        """Whether the request being read is pipelined behind one still being answered:
        queued with its headers read (uvicorn reads nothing more meanwhile), or with them
        still arriving after a request read whole."""
        answering = self.cycle is not None and not self.cycle.response_complete
        return bool(self.pipeline) or (answering and not self.cycle.more_body)

    def _arm(self) -> None:
        self._read_deadline = self.loop.call_later(self.read_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self._waiting_on_an_answer():
            self._arm()  # its peer is not the slow one: its clock starts again
            return
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
            log.warning("request_read_timeout", client=client, seconds=self.read_seconds)
            # Not close(): over TLS it waits up to 30 s more for the peer to acknowledge,
            # which a slow peer never does, and a drain would wait for it too.
            self.transport.abort()


def with_read_deadline(seconds: float) -> type[ReadDeadlineProtocol]:
    """The protocol class for uvicorn's `http` option, with a deadline of `seconds`."""
    return type("ReadDeadlineProtocol", (ReadDeadlineProtocol,), {"read_seconds": seconds})


class _HandshakeDeadlineLoop(uvloop.Loop):
    """uvloop's loop, whose servers give a TLS handshake `HANDSHAKE_SECONDS` to finish and
    a TLS close `SHUTDOWN_SECONDS`."""

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:  # uvloop's own Server
        kwargs.setdefault("ssl_handshake_timeout", HANDSHAKE_SECONDS)
        kwargs.setdefault("ssl_shutdown_timeout", SHUTDOWN_SECONDS)
        return await super().create_server(*args, **kwargs)


def event_loop() -> asyncio.AbstractEventLoop:
    """The event loop for uvicorn's `loop` option (as "webhook.read_deadline:event_loop")."""
    return _HandshakeDeadlineLoop()
