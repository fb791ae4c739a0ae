"""RoleCache: the watched copy of Roles and ClusterRoles that the webhook server judges with.

The event handling is tested by feeding lists and watch events straight in; the loop by a
scripted `RoleApi`; the kubernetes-client edge by a small API server stand-in on loopback.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from webhook.admission import validate
from webhook.config import Settings
from webhook.kube import (
    KubernetesRoleApi,
    KubeUnavailable,
    RoleCache,
    RoleKind,
    WatchExpired,
    role_cache_from_kubeconfig,
)
from webhook.review import AdmissionRequest
from webhook.verdict import Object

WILDCARD = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
READ_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}


def cluster_role(name: str, *rules: Object, version: str = "1") -> dict[str, Any]:
    metadata = {"name": name, "resourceVersion": version}
    return {"kind": "ClusterRole", "metadata": metadata, "rules": list(rules)}


def role(name: str, namespace: str, *rules: Object, version: str = "1") -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "resourceVersion": version}
    return {"kind": "Role", "metadata": metadata, "rules": list(rules)}


def synced_cache(**kwargs: Any) -> RoleCache:
    """A cache whose lists were applied by hand (its loop never started)."""
    cache = RoleCache(ScriptedApi(), **kwargs)
    cache.apply_list("ClusterRole", [cluster_role("viewer", READ_PODS)], "10")
    cache.apply_list("Role", [role("ops", "team-a", WILDCARD)], "20")
    return cache


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


# Event handling


def test_listed_roles_are_found_by_kind_namespace_and_name() -> None:
    """A Role is found in its namespace only; a ClusterRole whatever namespace is asked."""
    cache = synced_cache()
    assert cache.rules("Role", "team-a", "ops") == (WILDCARD,)
    assert cache.rules("Role", "team-b", "ops") is None
    assert cache.rules("ClusterRole", "team-b", "viewer") == (READ_PODS,)
    assert cache.rules("ClusterRole", "", "ops") is None
    assert cache.rules("Deployment", "team-a", "ops") is None


def test_the_cache_is_complete_only_once_both_kinds_are_listed() -> None:
    """complete() and synced stay False until Roles and ClusterRoles were both listed."""
    cache = RoleCache(ScriptedApi())
    assert not cache.complete()
    cache.apply_list("ClusterRole", [], "1")
    assert not cache.synced
    cache.apply_list("Role", [], "1")
    assert cache.synced
    assert cache.complete()


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        pytest.param("ADDED", cluster_role("new", WILDCARD), (WILDCARD,), id="added"),
        pytest.param(
            "MODIFIED", cluster_role("viewer", WILDCARD), (WILDCARD,), id="modified-replaces"
        ),
        pytest.param("DELETED", cluster_role("viewer"), None, id="deleted"),
    ],
)
def test_watch_events_change_the_stored_rules(
    event_type: str, obj: dict[str, Any], expected: tuple[Object, ...] | None
) -> None:
    """ADDED and MODIFIED store the object's rules; DELETED forgets the role."""
    cache = synced_cache()
    cache.apply_event(
        "ClusterRole", event_type, {**obj, "metadata": {**obj["metadata"], "resourceVersion": "11"}}
    )
    assert cache.rules("ClusterRole", "", obj["metadata"]["name"]) == expected
    assert cache.resource_version("ClusterRole") == "11"


def test_a_bookmark_moves_the_resource_version_only() -> None:
    """BOOKMARK events carry a resourceVersion and nothing else to apply."""
    cache = synced_cache()
    cache.apply_event("Role", "BOOKMARK", {"kind": "Role", "metadata": {"resourceVersion": "99"}})
    assert cache.resource_version("Role") == "99"
    assert cache.rules("Role", "team-a", "ops") == (WILDCARD,)


def test_a_role_without_rules_is_known_and_empty() -> None:
    """An aggregated ClusterRole not yet filled is known (empty rules), not missing."""
    cache = synced_cache()
    cache.apply_event(
        "ClusterRole", "ADDED", {"metadata": {"name": "agg", "resourceVersion": "12"}}
    )
    assert cache.rules("ClusterRole", "", "agg") == ()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param({"kind": "Status", "code": 410, "reason": "Expired"}, WatchExpired, id="gone"),
        pytest.param({"kind": "Status", "code": 500, "message": "boom"}, KubeUnavailable, id="500"),
    ],
)
def test_an_error_event_raises_for_the_loop_to_handle(
    status: dict[str, Any], error: type[Exception]
) -> None:
    """410 Gone raises WatchExpired (relist); any other ERROR raises KubeUnavailable."""
    with pytest.raises(error):
        synced_cache().apply_event("Role", "ERROR", status)


def test_a_relist_replaces_everything_known_of_that_kind() -> None:
    """Roles deleted while the watch was down disappear with the next list."""
    cache = synced_cache()
    cache.apply_list("ClusterRole", [cluster_role("other")], "30")
    assert cache.rules("ClusterRole", "", "viewer") is None
    assert cache.rules("ClusterRole", "", "other") == ()
    assert cache.rules("Role", "team-a", "ops") == (WILDCARD,)


def test_forgetting_a_kind_makes_the_cache_incomplete_until_relisted() -> None:
    """After a connection failure the cache answers with what it has but is not complete."""
    cache = synced_cache()
    cache.forget("Role", unsynced=True)
    assert not cache.complete()
    assert cache.rules("Role", "team-a", "ops") == (WILDCARD,)
    assert cache.resource_version("Role") is None


def test_an_unknown_kind_is_refused() -> None:
    """Only Role and ClusterRole can be listed into the cache."""
    with pytest.raises(ValueError, match="not a role kind"):
        RoleCache(ScriptedApi()).apply_list("Pod", [], "1")  # type: ignore[arg-type]


def test_reads_and_writes_from_many_threads_do_not_interfere() -> None:
    """Admission threads read while the watch thread writes, without errors or torn state."""
    cache = synced_cache()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(2000):
                rules = cache.rules("ClusterRole", "", "hot")
                assert rules in (None, (READ_PODS,), (WILDCARD,))
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for index in range(2000):
        rules = READ_PODS if index % 2 else WILDCARD
        cache.apply_event("ClusterRole", "MODIFIED", cluster_role("hot", rules, version=str(index)))
    for reader in readers:
        reader.join()
    assert errors == []


def test_the_cache_judges_bindings_through_the_engine() -> None:
    """A binding to a cached wildcard Role is denied, with no 'not found' warning."""
    obj = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "ops", "namespace": "team-a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ops"},
        "subjects": [{"kind": "User", "name": "dev-1"}],
    }
    gvk = {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "RoleBinding"}
    request = AdmissionRequest.model_validate(
        {
            "uid": "1",
            "kind": gvk,
            "resource": {**gvk, "resource": "rolebindings"},
            "namespace": "team-a",
            "operation": "CREATE",
            "object": obj,
        }
    )
    verdict = validate(request, Settings(), roles=synced_cache())
    assert [v.check for v in verdict.violations] == ["wildcardRole"]
    assert verdict.warnings == []


# The loop, driven by a scripted API


Step = Any  # a result, an exception to raise, or a callable to run first


class ScriptedApi:
    """A RoleApi that plays scripted list results and watch streams, one per call.

    A watch whose script is used up blocks until `interrupt()`, as a quiet watch would.
    """

    def __init__(self) -> None:
        self.lists: dict[str, deque[Step]] = {"Role": deque(), "ClusterRole": deque()}
        self.watches: dict[str, deque[list[Step]]] = {"Role": deque(), "ClusterRole": deque()}
        self.list_calls: list[str] = []
        self.watch_calls: list[tuple[str, str]] = []
        self.interrupted = threading.Event()

    def list_roles(self, kind: RoleKind) -> tuple[list[Object], str]:
        self.list_calls.append(kind)
        step = self.lists[kind].popleft() if self.lists[kind] else ([], "1")
        if callable(step):
            step = step()
        if isinstance(step, BaseException):
            raise step
        items, version = step
        return list(items), str(version)

    def watch_roles(
        self, kind: RoleKind, resource_version: str, seconds: int
    ) -> Generator[Object, None, None]:
        self.watch_calls.append((kind, resource_version))
        script = self.watches[kind].popleft() if self.watches[kind] else None
        if script is None:
            self.interrupted.wait(10)
            raise KubeUnavailable("interrupted")
        for step in script:
            if isinstance(step, BaseException):
                raise step
            yield step

    def interrupt(self) -> None:
        self.interrupted.set()


@pytest.fixture
def api() -> ScriptedApi:
    return ScriptedApi()


@pytest.fixture
def running(api: ScriptedApi) -> Iterator[RoleCache]:
    """A started cache on the scripted API, with millisecond backoff; stopped afterwards."""
    cache = RoleCache(api, backoff=(0.001, 0.01), shortest_watch=0.0)
    yield cache
    cache.stop(timeout=5)


def event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "object": obj}


def test_start_lists_both_kinds_and_becomes_synced(api: ScriptedApi, running: RoleCache) -> None:
    """The first list of each kind makes the cache synced and its roles readable."""
    api.lists["ClusterRole"].append(([cluster_role("viewer", READ_PODS)], "5"))
    api.lists["Role"].append(([role("ops", "team-a", WILDCARD)], "6"))
    running.start()
    assert running.wait_synced(5)
    assert running.rules("ClusterRole", "", "viewer") == (READ_PODS,)
    assert running.rules("Role", "team-a", "ops") == (WILDCARD,)
    assert eventually(lambda: ("ClusterRole", "5") in api.watch_calls)


def test_watch_events_reach_the_cache(api: ScriptedApi, running: RoleCache) -> None:
    """A role created after the list is readable once its ADDED event arrives."""
    api.watches["ClusterRole"].append([event("ADDED", cluster_role("late", WILDCARD, version="7"))])
    running.start()
    assert eventually(lambda: running.rules("ClusterRole", "", "late") == (WILDCARD,))


def test_a_watch_that_ends_resumes_from_the_last_resource_version(
    api: ScriptedApi, running: RoleCache
) -> None:
    """A watch the server closes is resumed from the newest version seen, without a relist."""
    api.lists["ClusterRole"].append(([], "5"))
    api.watches["ClusterRole"].append(
        [
            event("ADDED", cluster_role("a", version="8")),
            event("BOOKMARK", cluster_role("", version="9")),
        ]
    )
    running.start()
    assert eventually(lambda: ("ClusterRole", "9") in api.watch_calls)
    assert api.list_calls.count("ClusterRole") == 1
    assert running.synced


def test_410_gone_relists_at_once_and_stays_complete(api: ScriptedApi, running: RoleCache) -> None:
    """An expired version makes the cache list again; roles deleted meanwhile disappear."""
    api.lists["ClusterRole"].extend([([cluster_role("old")], "5"), ([cluster_role("new")], "50")])
    gone = event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    api.watches["ClusterRole"].append([gone])
    running.start()
    assert eventually(lambda: ("ClusterRole", "50") in api.watch_calls)
    assert running.rules("ClusterRole", "", "old") is None
    assert running.rules("ClusterRole", "", "new") == ()
    assert running.synced


def test_a_dropped_connection_makes_the_cache_incomplete_until_it_relists(
    api: ScriptedApi, running: RoleCache
) -> None:
    """While the relist after a failure is pending, a missing role may exist: not complete."""
    relist_may_finish = threading.Event()

    def slow_relist() -> tuple[list[Object], str]:
        relist_may_finish.wait(5)
        return [role("ops", "team-a")], "40"

    api.lists["Role"].extend([([], "4"), slow_relist])
    api.watches["Role"].append([KubeUnavailable("connection reset by peer")])
    running.start()
    assert eventually(lambda: api.list_calls.count("Role") == 2)
    assert not running.complete()
    relist_may_finish.set()
    assert eventually(running.complete)
    assert running.rules("Role", "team-a", "ops") == ()


def test_a_failing_first_list_is_retried_with_backoff(api: ScriptedApi, running: RoleCache) -> None:
    """The API server being down at start only delays the sync."""
    api.lists["Role"].extend([KubeUnavailable("refused"), KubeUnavailable("refused"), ([], "3")])
    running.start()
    assert running.wait_synced(5)
    assert api.list_calls.count("Role") == 3


def test_an_unexpected_error_does_not_kill_the_watch_thread(
    api: ScriptedApi, running: RoleCache
) -> None:
    """Even a bug-like exception is logged and retried, never leaving a dead cache behind."""
    api.lists["ClusterRole"].extend([RuntimeError("surprise"), ([], "2")])
    running.start()
    assert running.wait_synced(5)


def test_stop_interrupts_quiet_watches_promptly(api: ScriptedApi) -> None:
    """stop() returns quickly even though both watches are blocked waiting for events."""
    cache = RoleCache(api)
    cache.start()
    assert cache.wait_synced(5)
    started = time.monotonic()
    cache.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert not any(t.name.startswith("bulwark-") and t.is_alive() for t in threading.enumerate())


# The kubernetes-client edge, against an API server stand-in on loopback


class FakeApiServer(ThreadingHTTPServer):
    """Answers the RBAC list and watch calls the client makes, as the tests script them."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.lists: dict[str, Callable[[dict[str, list[str]]], tuple[int, dict[str, Any]]]] = {}
        self.watches: dict[str, list[dict[str, Any]]] = {}
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        resource = url.path.rsplit("/", 1)[-1]
        query = parse_qs(url.query)
        self.server.requests.append((resource, query))
        if query.get("watch") == ["true"]:
            self._watch(self.server.watches.get(resource, []))
        else:
            status, body = self.server.lists[resource](query)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def _watch(self, events: list[dict[str, Any]]) -> None:
        """Stream the events in chunks, then hold the watch open until released."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for item in events:
            line = json.dumps(item).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        self.server.release.wait(10)
        with contextlib.suppress(OSError):  # the client may have hung up first
            self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def fake_api_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApiServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def role_list(*items: dict[str, Any], version: str, token: str = "") -> dict[str, Any]:
    metadata = {"resourceVersion": version, **({"continue": token} if token else {})}
    return {"kind": "List", "metadata": metadata, "items": list(items)}


def client_api(server: FakeApiServer) -> KubernetesRoleApi:
    from kubernetes import client

    return KubernetesRoleApi(client.ApiClient(client.Configuration(host=server.url)))


def test_the_client_edge_lists_every_page(fake_api_server: FakeApiServer) -> None:
    """A paged list is followed through its continue tokens to the last page's version."""

    def pages(query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if query.get("continue") == ["page-2"]:
            return 200, role_list(cluster_role("b"), version="200")
        return 200, role_list(cluster_role("a"), version="100", token="page-2")

    fake_api_server.lists["clusterroles"] = pages
    items, version = client_api(fake_api_server).list_roles("ClusterRole")
    assert [item["metadata"]["name"] for item in items] == ["a", "b"]
    assert version == "200"
    assert fake_api_server.requests[0][1]["limit"] == ["500"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(410, WatchExpired, id="gone"),
        pytest.param(403, KubeUnavailable, id="forbidden"),
        pytest.param(500, KubeUnavailable, id="server-error"),
    ],
)
def test_the_client_edge_translates_api_errors(
    fake_api_server: FakeApiServer, status: int, error: type[Exception]
) -> None:
    """ApiException becomes WatchExpired (410) or KubeUnavailable, naming the status."""
    body = {"kind": "Status", "code": status, "message": "no"}
    fake_api_server.lists["roles"] = lambda query: (status, body)
    with pytest.raises(error, match=str(status) if status != 410 else "listing Roles"):
        client_api(fake_api_server).list_roles("Role")


def test_the_client_edge_translates_a_refused_connection() -> None:
    """Nothing listening on the port: KubeUnavailable, not a urllib3 exception."""
    from kubernetes import client

    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
        configuration.retries = False
        api = KubernetesRoleApi(client.ApiClient(configuration))
        with pytest.raises(KubeUnavailable):
            api.list_roles("Role")


def test_the_client_edge_streams_watch_events(fake_api_server: FakeApiServer) -> None:
    """Watch events arrive one by one while the connection stays open."""
    fake_api_server.watches["roles"] = [
        {"type": "ADDED", "object": role("ops", "team-a", WILDCARD, version="101")},
        {"type": "BOOKMARK", "object": {"kind": "Role", "metadata": {"resourceVersion": "102"}}},
    ]
    api = client_api(fake_api_server)
    events = api.watch_roles("Role", "100", 30)
    assert next(events)["type"] == "ADDED"
    assert next(events)["object"]["metadata"]["resourceVersion"] == "102"
    resource, query = fake_api_server.requests[-1]
    assert resource == "roles"
    assert query["resourceVersion"] == ["100"]
    assert query["allowWatchBookmarks"] == ["true"]
    events.close()


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "tester", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
                "current-context": "fake",
            }
        )
    )
    return str(path)


def test_a_cache_from_a_kubeconfig_syncs_and_stops(
    fake_api_server: FakeApiServer, tmp_path: Path
) -> None:
    """The factory's cache lists and watches through the real client, and stops promptly."""
    fake_api_server.lists["roles"] = lambda q: (200, role_list(role("ops", "team-a"), version="1"))
    fake_api_server.lists["clusterroles"] = lambda q: (
        200,
        role_list(cluster_role("viewer", READ_PODS), version="1"),
    )
    fake_api_server.watches["clusterroles"] = [
        {"type": "ADDED", "object": cluster_role("late", WILDCARD, version="2")}
    ]
    cache = role_cache_from_kubeconfig(kubeconfig(tmp_path, fake_api_server.url))
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert cache.rules("ClusterRole", "", "viewer") == (READ_PODS,)
        assert eventually(lambda: cache.rules("ClusterRole", "", "late") == (WILDCARD,))
    finally:
        started = time.monotonic()
        cache.stop(timeout=5)
    assert time.monotonic() - started < 2


def test_an_unusable_kubeconfig_is_reported_as_kube_unavailable(tmp_path: Path) -> None:
    """A missing kubeconfig file stops with a message naming it."""
    missing = str(tmp_path / "nope")
    with pytest.raises(KubeUnavailable, match="nope"):
        role_cache_from_kubeconfig(missing)


def test_in_cluster_configuration_without_a_token_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a pod without a service account token: KubeUnavailable, nothing contacted."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "9")
    with pytest.raises(KubeUnavailable, match="in-cluster"):
        role_cache_from_kubeconfig(None)
