"""The floor: the least a Python admission webhook can do, on Bulwark's own server stack.

A bare ASGI application that reads the body, parses it with orjson (as Bulwark does) and
answers an allowed AdmissionReview carrying the request's uid. It runs on the same uvicorn
options (`webhook.server.UVICORN_OPTIONS`: uvloop, httptools, keep-alive), the same TLS
context (`webhook.tls.server_context`: TLS 1.2/1.3, the same ciphers) and the same
collector settings (`webhook.server.settle_heap`: the start-up heap frozen, the young
generation collected less often) as `bulwark serve`, so the gap between the two is what
Bulwark's own code costs: decoding into models, the policies, metrics and the log line.

    .venv/bin/python bench/floor.py --port 18444 --cert-dir bench/out/certs
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from webhook.server import UVICORN_OPTIONS, settle_heap
from webhook.tls import server_context

CONTENT_TYPE = (b"content-type", b"application/json")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    review = orjson.loads(b"".join(chunks))
    answer = orjson.dumps(
        {
            "apiVersion": review["apiVersion"],
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True},
        }
    )
    headers = [CONTENT_TYPE, (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18444)
    parser.add_argument("--cert-dir", default="bench/out/certs")
    args = parser.parse_args()

    folder = Path(args.cert_dir)
    context = server_context()
    context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(folder / "tls.crt"),
        ssl_keyfile=str(folder / "tls.key"),
        lifespan="on",
        **UVICORN_OPTIONS,
    )
    config.load()
    config.ssl = context  # the same context Bulwark serves with, not uvicorn's default
    settle_heap()  # the collector set up as `bulwark serve` sets it up
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
