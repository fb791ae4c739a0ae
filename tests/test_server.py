"""`bulwark serve` as the API server meets it: a real process behind a real TLS socket."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from tests.live import LiveServer, live_server
from tests.reviews import pod, review


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("serve"), "--max-body-bytes", "65536") as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def _response(http: httpx.Client, path: str, body: object) -> dict[str, object]:
    reply = http.post(path, json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, object] = reply.json()
    return answer


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_privileged_pod_is_denied_in_the_request_api_version(
    client: httpx.Client, api_version: str
) -> None:
    """A privileged pod is denied with 403, the uid echoed, in the version it was asked in."""
    body = review(pod(privileged=True), api_version=api_version, uid="uid-1")
    answer = _response(client, "/validate", body)
    assert answer["apiVersion"] == api_version
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert isinstance(response, dict)
    assert response["uid"] == "uid-1"
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert "spec.containers[0].securityContext.privileged" in message
    assert "Pod team-a/web" in message
    assert "set it to false" in message
    assert "patch" not in response
    assert "patchType" not in response


def test_plain_pod_is_admitted_without_a_patch_on_validate(client: httpx.Client) -> None:
    """A validating reply never carries a patch, even for a pod the mutation would default."""
    response = _response(client, "/validate", review(pod()))["response"]
    assert response == {"uid": response["uid"], "allowed": True}  # type: ignore[index]


def test_delete_with_a_null_object_is_admitted(client: httpx.Client) -> None:
    """DELETE carries only oldObject; it is admitted on both webhooks, uid echoed."""
    body = review(None, operation="DELETE", old=pod(privileged=True), uid="del-1")
    for path in ("/validate", "/mutate"):
        response = _response(client, path, body)["response"]
        assert response == {"uid": "del-1", "allowed": True}


def test_status_subresource_write_of_a_privileged_pod_is_admitted(client: httpx.Client) -> None:
    """The kubelet's status writes on an existing privileged pod never get stuck."""
    old = pod(privileged=True)
    body = review(pod(privileged=True), operation="UPDATE", old=old, sub_resource="status")
    assert _response(client, "/validate", body)["response"]["allowed"] is True  # type: ignore[index]
    assert "patch" not in _response(client, "/mutate", body)["response"]  # type: ignore[operator]


def test_update_that_only_adds_a_label_to_a_privileged_pod_is_admitted(
    client: httpx.Client,
) -> None:
    """A violation the old object already had does not block an unrelated update."""
    new = pod(privileged=True)
    new["metadata"]["labels"] = {"team": "a"}
    body = review(new, operation="UPDATE", old=pod(privileged=True))
    assert _response(client, "/validate", body)["response"]["allowed"] is True  # type: ignore[index]


def test_malformed_json_is_a_400_with_a_json_error(client: httpx.Client) -> None:
    """A truncated body is a client error that says what is wrong, not a crash."""
    reply = client.post(
        "/validate", content=b'{"apiVersion": "admission.k8s.io/v1", "request": {"uid": ',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param({"kind": "AdmissionReview"}, "apiVersion", id="no-api-version"),
        pytest.param(
            {"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {}},
            "apiVersion",
            id="unknown-version",
        ),
        pytest.param(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
            "request",
            id="no-request",
        ),
        pytest.param(
            review(pod(), uid="x") | {"request": {"uid": "x"}}, "request.kind", id="no-kind"
        ),
        pytest.param([1, 2, 3], "AdmissionReview", id="a-list"),
    ],
)
def test_a_body_that_is_not_an_admission_review_is_a_400(
    client: httpx.Client, body: object, needle: str
) -> None:
    """Each way of not being an AdmissionReview is a 400 naming the missing piece."""
    reply = client.post("/mutate", json=body)
    assert reply.status_code == 400
    assert needle in reply.json()["error"]


def test_a_non_json_content_type_is_a_415(client: httpx.Client) -> None:
    """The API server always sends JSON; anything else is refused before it is read."""
    reply = client.post("/validate", content=b"a: b", headers={"content-type": "text/yaml"})
    assert reply.status_code == 415
    assert "application/json" in reply.json()["error"]


def test_an_oversized_body_is_a_413_from_its_content_length(client: httpx.Client) -> None:
    """A declared length over the limit is refused before the body is read."""
    body = json.dumps(review(pod(), uid="big") | {"padding": "x" * 70000}).encode()
    reply = client.post("/validate", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert "limit" in reply.json()["error"]


def test_an_oversized_chunked_body_is_a_413_while_streaming(client: httpx.Client) -> None:
    """A body without Content-Length is counted as it arrives and cut off at the limit."""

    def chunks() -> Iterator[bytes]:
        yield b'{"apiVersion": "admission.k8s.io/v1", "padding": "'
        for _ in range(100):
            yield b"x" * 4096

    reply = client.post("/validate", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413


def test_deeply_nested_json_is_a_400_and_the_server_stays_up(client: httpx.Client) -> None:
    """Pathological nesting neither crashes nor stalls the server."""
    body = b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": ' + (
        b"[" * 50000
    ) + b"]" * 50000 + b"}"  # fmt: skip
    started = time.monotonic()
    reply = client.post("/validate", content=body, headers={"content-type": "application/json"})
    assert reply.status_code in (400, 413)
    assert time.monotonic() - started < 5
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_a_name_and_namespace_nested_a_thousand_deep_get_an_answer_not_a_500(
    client: httpx.Client, path: str
) -> None:
    """Within the JSON reader's depth limit, yet past Python's stack for `str`."""
    deep = b"[" * 1000 + b"]" * 1000
    privileged = json.dumps(pod(privileged=True)["spec"]).encode()
    obj = b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": %s, "namespace": %s}, '
    obj += b'"spec": %s}'
    request = review(pod(), namespace="")
    body = (
        json.dumps(request)
        .encode()
        .replace(json.dumps(request["request"]["object"]).encode(), obj % (deep, deep, privileged))
    )
    reply = client.post(path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 200, reply.text
    answer = reply.json()["response"]
    assert answer["uid"] == request["request"]["uid"]
    if path == "/validate":
        assert answer["allowed"] is False


def test_unknown_paths_and_methods_answer_json_errors(client: httpx.Client) -> None:
    """404 and 405 come back as JSON errors like every other client error."""
    assert client.get("/nope").json() == {"error": "Not Found"}
    wrong = client.get("/validate")
    assert wrong.status_code == 405
    assert "error" in wrong.json()
    slashed = client.post("/validate/", json=review(pod()), headers={"host": "elsewhere.example"})
    assert (slashed.status_code, slashed.json()) == (404, {"error": "Not Found"})
    assert "location" not in slashed.headers


@pytest.mark.parametrize(
    "framing",
    [
        b"content-length: abc\r\n\r\n{}",
        b"content-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        b"content-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ],
)
def test_a_request_that_is_not_valid_http_gets_a_json_400(
    server: LiveServer, framing: bytes
) -> None:
    with _tls_connection(server) as connection:
        connection.sendall(b"POST /validate HTTP/1.1\r\nhost: x\r\n" + framing)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer
    assert b"content-type: application/json" in head.lower()
    assert "not a valid HTTP/1.1 request" in json.loads(body)["error"]


def test_mutate_carries_a_base64_json_patch_only_when_there_is_one(client: httpx.Client) -> None:
    """Mutating replies have patchType JSONPatch and a decodable patch, or neither."""
    response = _response(client, "/mutate", review(pod()))["response"]
    assert isinstance(response, dict)
    if "patch" in response:
        assert response["patchType"] == "JSONPatch"
        assert isinstance(json.loads(base64.b64decode(response["patch"])), list)
    else:
        assert "patchType" not in response
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    response = _response(client, "/mutate", review(deployment, kind="Deployment"))["response"]
    assert "patch" not in response  # type: ignore[operator]


def test_health_readiness_and_metrics_answer(client: httpx.Client) -> None:
    """Liveness and readiness are 200 once serving; metrics count admissions by outcome."""
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").status_code == 200
    _response(client, "/validate", review(pod(privileged=True)))
    text = client.get("/metrics").text
    assert 'bulwark_admission_requests_total{allowed="false",kind="Pod"' in text
    assert "bulwark_admission_duration_seconds_bucket" in text
    assert 'le="0.0005"' in text
    assert 'bulwark_policy_violations_total{check="privileged",enforcement="deny"' in text


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_is_refused(server: LiveServer) -> None:
    """Only TLS 1.2 and 1.3 are offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(server.ca)
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_handshakes_verify_against_the_generated_ca(
    server: LiveServer, version: ssl.TLSVersion
) -> None:
    """Both modern versions complete a verified handshake for the name localhost."""
    context = ssl.create_default_context(cafile=server.ca)
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]


def test_the_generated_certificate_names_loopback_and_the_service(server: LiveServer) -> None:
    """The self-signed pair covers localhost, 127.0.0.1 and the service DNS names."""
    cert = x509.load_pem_x509_certificate((server.cert_dir / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    assert {
        "localhost",
        "bulwark.bulwark-system.svc",
        "bulwark.bulwark-system.svc.cluster.local",
    } <= dns
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (server.cert_dir / "tls.key").stat().st_mode & 0o777 == 0o600
    assert "self_signed_certificate_created" in server.log()


def test_each_admission_is_logged_once_as_a_json_line(server: LiveServer) -> None:
    """One canonical structured line per admission, with the request's identity."""
    with server.client() as http:
        _response(http, "/validate", review(pod("logged", privileged=True), uid="log-me"))
    time.sleep(0.2)
    lines = [json.loads(line) for line in server.log().splitlines() if '"log-me"' in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "admission"
    assert (line["kind"], line["namespace"], line["name"]) == ("Pod", "team-a", "logged")
    assert (line["operation"], line["user"]) == ("CREATE", "dev-1")
    assert line["allowed"] is False
    assert line["violations"] == ["pod-security/privileged"]
    assert isinstance(line["duration_ms"], float)


def _post_while_terminating(
    server: LiveServer, body: Iterator[bytes], *, wait: float
) -> tuple[int, list[httpx.Response]]:
    """POST `body` (sent as it is produced) to /validate and SIGTERM the server half a
    second in; the server's exit status and the answer, if one came within `wait` seconds."""
    answers: list[httpx.Response] = []

    def send() -> None:
        with server.client() as http:
            answers.append(
                http.post("/validate", content=body, headers={"content-type": "application/json"})
            )

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.5)
    status = server.terminate()
    sender.join(wait)
    return status, answers


def _script_output(script: str, tmp_path: Path) -> list[str]:
    """The lines `script` prints, run by a fresh interpreter given a certificate folder;
    it must exit 0."""
    finished = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "certs")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.splitlines()


def test_sigterm_lets_the_request_in_flight_finish_and_exits_zero(tmp_path: Path) -> None:
    """On SIGTERM the server drains: a slow upload still gets its answer, then exit 0."""
    server = LiveServer(tmp_path)
    try:
        server.wait_ready()
        body = json.dumps(review(pod(privileged=True), uid="inflight")).encode()

        def slow_body() -> Iterator[bytes]:
            yield body[:100]
            time.sleep(1.5)  # SIGTERM arrives while the request is half sent
            yield body[100:]

        status, answers = _post_while_terminating(server, slow_body(), wait=10)
    finally:
        server.terminate()
    assert status == 0
    assert len(answers) == 1
    assert answers[0].status_code == 200
    assert answers[0].json()["response"]["uid"] == "inflight"
    assert '"draining"' in server.log()


def test_a_request_still_arriving_when_the_drain_ends_gets_a_503_json_error(
    tmp_path: Path,
) -> None:
    """Past --drain-seconds the request is answered, not cut off with a bare 500."""
    server = LiveServer(tmp_path, "--drain-seconds", "1")
    try:
        server.wait_ready()

        def never_finished() -> Iterator[bytes]:
            yield b'{"apiVersion": "admission.k8s.io/v1", '
            time.sleep(8)  # the rest never comes in time
            yield b"}"

        status, answers = _post_while_terminating(server, never_finished(), wait=15)
    finally:
        server.terminate()
    assert status == 0
    assert len(answers) == 1
    assert answers[0].status_code == 503
    assert "stopped before the request was complete" in answers[0].json()["error"]
    assert "Exception in ASGI application" not in server.log()


def test_keep_alive_clients_lose_no_request_across_a_sigterm(tmp_path: Path) -> None:
    """While draining every answer says `Connection: close`; no request goes unanswered."""
    server = LiveServer(tmp_path)
    server.wait_ready()
    body = review(pod(privileged=True))
    dropped: list[str] = []
    closing: list[bool] = []
    answered = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal answered
        with server.client() as http:
            while not stop.is_set():
                try:
                    answer = http.post("/validate", json=body)
                except httpx.ConnectError:
                    return  # the listener has closed: nothing was sent
                except httpx.HTTPError as error:  # sent, and never answered
                    dropped.append(repr(error))
                    return
                answered += 1
                closing.append(answer.headers.get("connection") == "close")

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(1.0)
    os.kill(server.process.pid, signal.SIGTERM)
    status = server.process.wait(30)
    stop.set()
    for thread in clients:
        thread.join(10)
    server.terminate()
    assert status == 0
    assert dropped == []
    assert answered > 20
    assert any(closing)


def test_a_connection_accepted_before_the_listener_closes_has_its_request_answered(
    tmp_path: Path,
) -> None:
    """Its client connected while the server still listened, so it sends its request; the
    stop must not close the connection under it. Sent after the listener has closed and
    the settle time has passed, when uvicorn closes every connection without a request."""
    from webhook.read_deadline import FIRST_REQUEST_SECONDS
    from webhook.server import SETTLE_SECONDS

    server = LiveServer(tmp_path)
    server.wait_ready()
    body = json.dumps(review(pod(privileged=True))).encode()
    request = (
        b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    context = ssl.create_default_context(cafile=server.ca)
    with (
        socket.create_connection(("127.0.0.1", server.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as connection,
    ):
        os.kill(server.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while '"draining"' not in server.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)  # the listener closes as this line is written
        time.sleep(SETTLE_SECONDS + min(0.5, FIRST_REQUEST_SECONDS / 4))
        connection.sendall(request)
        connection.settimeout(10)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert server.process.wait(30) == 0
    head, _, reply = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"connection: close" in head.lower()
    assert json.loads(reply)["response"]["allowed"] is False


def test_a_connection_whose_handshake_ends_late_in_a_drain_waits_no_longer_than_the_others(
    tmp_path: Path,
) -> None:
    """A TCP connection accepted before the stop finishes its TLS handshake after uvicorn
    has asked its connections to shut down: it gets the same wait for a first request,
    not the whole read deadline, which would hold the drain."""
    from webhook.read_deadline import FIRST_REQUEST_SECONDS
    from webhook.server import SETTLE_SECONDS

    server = LiveServer(tmp_path, "--request-read-seconds", "20")
    server.wait_ready()
    context = ssl.create_default_context(cafile=server.ca)
    with (
        _tls_connection(server),  # idle: it keeps the server waiting while B is late
        socket.create_connection(("127.0.0.1", server.port)) as raw,
    ):
        os.kill(server.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while '"draining"' not in server.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(SETTLE_SECONDS + 0.5)  # uvicorn's pass over its connections is over
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
            handshaken = time.monotonic()
            connection.settimeout(15)
            assert connection.recv(1) == b""  # closed by the server, unasked
            waited = time.monotonic() - handshaken
    assert server.process.wait(15) == 0
    assert waited < FIRST_REQUEST_SECONDS + 2, waited


def test_a_websocket_upgrade_is_an_ordinary_request_with_a_json_answer(server: LiveServer) -> None:
    with _tls_connection(server) as connection:
        connection.sendall(
            b"GET /validate HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
            b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        answer = b""
        while b"}" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 "), answer
    assert "error" in json.loads(body)


_SIGTERM_BEFORE_SERVING = """
import signal, sys
from webhook.server import ServeOptions, hold_stop_signals, serve
hold_stop_signals()
signal.raise_signal(signal.SIGTERM)  # while the settings and certificates are being read
status = serve(ServeOptions(host="127.0.0.1", port=0, cert_dir=sys.argv[1]))
print(f"status {status}")
"""


def test_a_sigterm_during_start_up_ends_in_a_clean_stop_with_zero(tmp_path: Path) -> None:
    assert "status 0" in _script_output(_SIGTERM_BEFORE_SERVING, tmp_path)


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.0])
def test_sigterm_while_the_supervisor_starts_many_workers_stops_them_all_with_zero(
    tmp_path: Path, delay: float
) -> None:
    """No worker started in the same instant as the signal is left serving."""
    server = LiveServer(tmp_path, "--workers", "6")
    try:
        time.sleep(delay)
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(40)
    finally:
        server.terminate()
    assert status in (0, -signal.SIGTERM), server.log()  # -15: it came before any handler
    assert '"worker_kept_running"' not in server.log()


def test_an_invalid_configuration_stops_serve_with_status_2(tmp_path: Path) -> None:
    """A bad key in --config is named, and the server never starts."""
    server = LiveServer(tmp_path, config="podSecurity:\n  defaultLevel: strict\n")
    status = server.process.wait(30)
    server.terminate()
    assert status == 2
    assert "podSecurity.defaultLevel" in server.log()


def test_two_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    """With --workers 2 both processes answer on one port, and SIGTERM stops all with 0."""
    server = LiveServer(tmp_path, "--workers", "2")
    try:
        server.wait_ready()
        for _ in range(20):
            with server.client() as http:  # a new connection each time, spread over workers
                answer = _response(http, "/validate", review(pod(privileged=True)))
                assert answer["response"]["allowed"] is False  # type: ignore[index]
        pids = _listening_workers(server, 2)
        assert len(pids) == 2
    finally:
        status = server.terminate()
    assert status == 0


def _listening_workers(server: LiveServer, count: int) -> set[int]:
    """The pids of the workers that have logged `listening`, once `count` have (or 20 s
    have passed: the last may still be starting)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 20
    while len(pids) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        pids = {
            json.loads(line)["pid"] for line in server.log().splitlines() if '"listening"' in line
        }
    return pids


_STOPPED_WHILE_STARTING = """
import signal, sys
from webhook.server import ServeOptions, _bind, _prepare, _worker_server
options = ServeOptions(host="127.0.0.1", port=0, cert_dir=sys.argv[1])
_prepare(options)
server = _worker_server(options)
signal.raise_signal(signal.SIGTERM)  # before uvicorn has installed its own handlers
server.run(sockets=[_bind(options)])
print("stopped")
"""


def test_a_sigterm_that_lands_while_a_worker_starts_still_stops_it_with_zero(
    tmp_path: Path,
) -> None:
    """The stop is remembered across uvicorn's start-up instead of being swallowed."""
    lines = _script_output(_STOPPED_WHILE_STARTING, tmp_path)
    assert "stopped" in lines  # printed once run() has returned
    assert any("draining" in line for line in lines)


_STOPPED_WHILE_LOGGING = """
import signal, sys, structlog
from webhook.server import ServeOptions, _prepare, _worker_server
options = ServeOptions(host="127.0.0.1", port=0, cert_dir=sys.argv[1])
_prepare(options)
server = _worker_server(options)
writer = structlog.get_config()["logger_factory"]()
with writer._lock:  # as if the signal landed in the middle of writing a log line
    signal.raise_signal(signal.SIGTERM)  # the handler installed before uvicorn's
    server.handle_exit(signal.SIGTERM, None)  # uvicorn's, once it serves
print("stop requested" if server.stop_signal == signal.SIGTERM else "running")
"""


def test_a_sigterm_that_lands_inside_a_log_write_does_not_deadlock(tmp_path: Path) -> None:
    """The stop handlers set flags only; the drain is logged later, from the event loop."""
    assert _script_output(_STOPPED_WHILE_LOGGING, tmp_path)[-1] == "stop requested"


def test_sigterm_to_the_supervisor_alone_while_workers_start_exits_zero(tmp_path: Path) -> None:
    """As in a pod, where only PID 1 is signalled: the workers are stopped and reaped."""
    server = LiveServer(tmp_path, "--workers", "2")
    try:
        deadline = time.monotonic() + 30
        while '"supervising"' not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '"supervising"' in server.log()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(30)
    finally:
        server.terminate()
    assert status == 0, server.log()
    listening = [line for line in server.log().splitlines() if '"listening"' in line]
    for line in listening:
        pid = json.loads(line)["pid"]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_workers_whose_supervisor_is_killed_drain_and_free_the_port(tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no time to stop them; they notice and stop themselves."""
    server = LiveServer(tmp_path, "--workers", "2")
    try:
        server.wait_ready()
        pids = _listening_workers(server, 2)
        assert len(pids) == 2
        server.process.kill()
        server.process.wait(10)
        deadline = time.monotonic() + 15
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = {pid for pid in pids if Path(f"/proc/{pid}").exists()}
        assert pids == set(), server.log()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a failure
            os.killpg(server.process.pid, signal.SIGKILL)
        server.terminate()
    assert server.log().count('"supervisor_gone"') == 2


def test_a_busy_port_is_one_clear_error_with_status_2(tmp_path: Path) -> None:
    """Whatever the worker count, a port in use is reported, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            result = subprocess.run(
                [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1",
                 "--port", str(port), "--cert-dir", str(tmp_path / "certs"),
                 "--workers", workers],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert result.returncode == 2
            assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
            assert "Traceback" not in result.stderr


def test_a_review_larger_than_the_thread_threshold_is_judged_the_same(tmp_path: Path) -> None:
    """Big reviews take the worker-thread road and come back as the same kind of answer."""
    obj = pod("huge")
    obj["spec"]["containers"] = [
        {
            "name": f"c{i}",
            "image": "registry.example/app:1",
            "securityContext": {"privileged": True},
        }
        for i in range(4000)
    ]
    body = json.dumps(review(obj, uid="huge")).encode()
    assert len(body) > 256 * 1024
    with (
        live_server(tmp_path, "--max-body-bytes", str(4 * 1024 * 1024)) as live,
        live.client() as http,
    ):
        for path in ("/validate", "/mutate"):
            reply = http.post(path, content=body, headers={"content-type": "application/json"})
            assert reply.status_code == 200
            response = reply.json()["response"]
            assert response["uid"] == "huge"
        assert response["patchType"] == "JSONPatch"
        validated = http.post(
            "/validate", content=body, headers={"content-type": "application/json"}
        )
        message = validated.json()["response"]["status"]["message"]
        assert message.endswith("and 3980 more violations")
        assert '"request_failed"' not in live.log()


def test_a_worker_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> None:
    """Run in a process of its own: the collector's settings are the whole process's."""
    script = (
        "import gc\n"
        "from webhook.server import YOUNG_GENERATION_THRESHOLD, settle_heap\n"
        "before = gc.get_threshold()\n"
        "settle_heap()\n"
        "after = gc.get_threshold()\n"
        "print(before[1:] == after[1:], after[0] == YOUNG_GENERATION_THRESHOLD)\n"
        "print(gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True", "True"]


def _tls_connection(server: LiveServer) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=server.ca)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def _closed_within(connection: ssl.SSLSocket, seconds: float, *, trickle: bool) -> float | None:
    """When the server closed `connection` (seconds from now), sending a header byte every
    0.2 s if `trickle`; None if it was still open after `seconds`."""
    started = time.monotonic()
    connection.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            if trickle:
                connection.sendall(b"x")
            if connection.recv(1024) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except (ConnectionError, ssl.SSLError):
            return time.monotonic() - started
    return None


def test_a_request_that_does_not_arrive_whole_in_time_is_cut_off(tmp_path: Path) -> None:
    """A peer that sends nothing, or its headers a byte at a time, loses its connection
    after --request-read-seconds and it is logged; requests that arrive whole are served,
    on a kept-alive connection idle for longer than that too."""
    with live_server(tmp_path, "--request-read-seconds", "1", "--drain-seconds", "1") as server:
        silent, trickling = _tls_connection(server), _tls_connection(server)
        trickling.sendall(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            time.sleep(1.5)  # the kept-alive connection idles past the read deadline
            answer = client.post("/validate", json=review(pod(), uid="whole"))
            assert answer.json()["response"]["uid"] == "whole"
        closed_silent = _closed_within(silent, 5, trickle=False)
        closed_trickling = _closed_within(trickling, 5, trickle=True)
        log = server.log()
    assert closed_silent is not None, "a connection that sent nothing stayed open"
    assert closed_trickling is not None, "a request trickling in held its connection"
    assert log.count('"request_read_timeout"') >= 2


def test_a_connection_that_never_finishes_its_tls_handshake_is_dropped(tmp_path: Path) -> None:
    """A peer that connects and sends nothing, or half a ClientHello, loses the connection
    after the handshake deadline (10 s), not the event loop's default 60 s."""
    with live_server(tmp_path, "--drain-seconds", "1") as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        half.sendall(bytes.fromhex("160301020001"))  # the start of a ClientHello record
        started = time.monotonic()
        assert _dropped(silent)
        assert _dropped(half)
        waited = time.monotonic() - started
        silent.close()
        half.close()
    assert waited < 30, f"held for {waited:.0f} s"


def _dropped(connection: socket.socket) -> bool:
    """Whether the server ended `connection` (closed or reset) before its timeout."""
    try:
        return connection.recv(1) == b""
    except ConnectionError:
        return True


@pytest.mark.parametrize("cut", [20, -1], ids=["in-its-headers", "in-its-body"])
def test_a_pipelined_request_waiting_behind_a_slow_answer_keeps_its_connection(
    tmp_path: Path, cut: int
) -> None:
    """A request pipelined behind one that takes longer to answer than the read deadline,
    and sent only in part until that answer comes, is not cut off for the wait: both are
    answered."""
    from webhook.evaluate import MAX_REQUEST_OBJECTS

    manifests = "---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{n}}}\n"
        "spec:\n  containers:\n  - name: c\n    image: x\n"
        for n in range(MAX_REQUEST_OBJECTS)  # about a third of a second to judge
    ).encode()
    slow = (
        b"POST /evaluate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/yaml\r\n"
        b"Content-Length: " + str(len(manifests)).encode() + b"\r\n\r\n" + manifests
    )
    waiting = (
        b"POST /evaluate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    with live_server(tmp_path, "--request-read-seconds", "0.1", "--drain-seconds", "1") as server:
        connection = _tls_connection(server)
        connection.settimeout(20)
        reader = connection.makefile("rb")
        connection.sendall(slow + waiting[:cut])
        first = _read_response(reader)
        connection.sendall(waiting[cut:])
        second = _read_response(reader)
        connection.close()
    assert first[0] == 200
    assert b'"objects":%d' % MAX_REQUEST_OBJECTS in first[1]
    assert second[0] == 400
    assert b"no apiVersion" in second[1]


def _read_response(reader: Any) -> tuple[int, bytes]:
    """The status and body of the next HTTP/1.1 response on `reader` (by Content-Length)."""
    status_line = reader.readline()
    assert status_line, "the connection was dropped before the answer"
    length = 0
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(status_line.split()[1]), reader.read(length)


def test_an_idle_kept_alive_client_does_not_hold_the_drain(tmp_path: Path) -> None:
    """A client that keeps its connection idle and never answers the TLS close (httpx's
    pool does not) lets the server exit well before --drain-seconds runs out."""
    server = LiveServer(tmp_path, "--drain-seconds", "20")
    try:
        server.wait_ready()
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            started = time.monotonic()
            status = server.terminate(timeout=40)
            took = time.monotonic() - started
    finally:
        server.terminate()
    assert status == 0
    assert took < 12, f"the drain waited {took:.1f} s for an idle client"
