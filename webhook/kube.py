"""The Kubernetes API at the edge: a watched cache of Roles and ClusterRoles.

The rbac-binding policy must see the rules of the role a binding references, but an
admission webhook may not call the API server per request (latency, and a webhook that
calls the API server it serves can deadlock it). `RoleCache` lists every Role and ClusterRole
once, then keeps its copy current through watches, each in a daemon thread:

    list (paged) --resourceVersion--> watch --events--> apply_event --+
      ^                                 |  ended by the server: resume |
      |                                 +--------<---------------------+
      +-- 410 Gone (the version is too old): relist at once
      +-- connection refused or dropped, 401/403/5xx: unsynced, back off, relist

The event handling (`apply_list`, `apply_event`) is separate from the HTTP loop, so tests
feed it lists and events directly. Aggregated ClusterRoles need no work here: the API
server's aggregation controller writes their rules into `rules`, which is what is stored.

Only this module imports the `kubernetes` client, and only when a cache is built from a
kubeconfig: `bulwark evaluate` never pays for it. `kubernetes.client.ApiException` and
urllib3's errors are translated here into `KubeUnavailable` or `WatchExpired`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any, Literal, Protocol

import structlog
from urllib3.exceptions import HTTPError

from webhook.errors import KubeUnavailable
from webhook.verdict import Object

RoleKind = Literal["Role", "ClusterRole"]
ROLE_KINDS: tuple[RoleKind, ...] = ("Role", "ClusterRole")

log = structlog.get_logger("bulwark.kube")


class WatchExpired(KubeUnavailable):
    """The API server no longer has the resourceVersion asked for (410 Gone): relist."""


class RoleApi(Protocol):
    """The two calls the cache needs; `KubernetesRoleApi` makes them with the kubernetes client."""

    def list_roles(self, kind: RoleKind) -> tuple[list[Object], str]:
        """Every object of `kind` and the list's resourceVersion."""

    def watch_roles(
        self, kind: RoleKind, resource_version: str, seconds: int
    ) -> Generator[Object, None, None]:
        """The watch events (`{"type": ..., "object": ...}`) after `resource_version`."""

    def interrupt(self) -> None:
        """Abort the watches in flight, so that `stop()` need not wait for them to end."""


class _Store:
    """One kind's roles: rules by (namespace, name), and where the watch stands."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, str], tuple[Object, ...]] = {}
        self.resource_version: str | None = None
        self.synced = False


def _key(kind: RoleKind, obj: Object) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "") if kind == "Role" else ""
    return namespace, str(metadata.get("name") or "")


def _rules(obj: Object) -> tuple[Object, ...]:
    rules = obj.get("rules")
    return tuple(r for r in rules if isinstance(r, dict)) if isinstance(rules, list) else ()


def _version(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class RoleCache:
    """Roles and ClusterRoles, listed once and kept current by watches; a `RoleSource`.

    Reads are thread-safe and never touch the network. `complete()` is True only while both
    kinds are synced: then a role the cache lacks truly does not exist.

    `watch_seconds` is how long the API server keeps each watch open; `backoff` the first and
    the longest wait after a failure; a watch that ends within `shortest_watch` seconds counts
    as a failure, so that a server closing watches at once is not hammered.
    """

    def __init__(
        self,
        api: RoleApi,
        *,
        watch_seconds: int = 300,
        backoff: tuple[float, float] = (0.5, 30.0),
        shortest_watch: float = 1.0,
    ) -> None:
        self._api = api
        self._watch_seconds = watch_seconds
        self._shortest_watch = shortest_watch
        self._backoff = backoff
        self._stores: dict[str, _Store] = {kind: _Store() for kind in ROLE_KINDS}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # The RoleSource protocol.

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        store = self._stores.get(kind)
        if store is None:
            return None
        with self._lock:
            return store.rules.get((namespace if kind == "Role" else "", name))

    def complete(self) -> bool:
        return self.synced

    @property
    def synced(self) -> bool:
        """Whether both kinds are listed and their watches are running (for /readyz)."""
        with self._lock:
            return all(store.synced for store in self._stores.values())

    def wait_synced(self, timeout: float) -> bool:
        """Block until synced or `timeout` seconds have passed; return `synced`."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(s.synced for s in self._stores.values()), timeout
            )

    # Event handling, apart from the HTTP loop.

    def _store(self, kind: str) -> _Store:
        if kind not in self._stores:
            raise ValueError(f"not a role kind: {kind!r}")
        return self._stores[kind]

    def apply_list(self, kind: RoleKind, items: Sequence[Object], resource_version: str) -> None:
        """Replace everything known of `kind` with a fresh list; the kind is then synced."""
        store = self._store(kind)
        rules = {_key(kind, item): _rules(item) for item in items if isinstance(item, dict)}
        with self._changed:
            store.rules = rules
            store.resource_version = resource_version
            store.synced = True
            self._changed.notify_all()

    def apply_event(self, kind: RoleKind, event_type: str, obj: Object) -> None:
        """Apply one watch event; an ERROR event raises WatchExpired (410) or KubeUnavailable."""
        store = self._store(kind)
        if event_type == "ERROR":
            code, message = obj.get("code"), obj.get("message") or obj.get("reason") or ""
            if code == 410:
                raise WatchExpired(f"the {kind} watch expired: {message}")
            raise KubeUnavailable(f"the {kind} watch failed ({code}): {message}")
        with self._lock:
            if event_type in ("ADDED", "MODIFIED"):
                store.rules[_key(kind, obj)] = _rules(obj)
            elif event_type == "DELETED":
                store.rules.pop(_key(kind, obj), None)
            version = _version(obj)  # BOOKMARK events carry only this
            if version:
                store.resource_version = version

    def resource_version(self, kind: RoleKind) -> str | None:
        """Where the next watch of `kind` starts; None when it must list first."""
        with self._lock:
            return self._store(kind).resource_version

    def forget(self, kind: RoleKind, *, unsynced: bool) -> None:
        """Make the next round list again; `unsynced` also withdraws completeness meanwhile."""
        store = self._store(kind)
        with self._lock:
            store.resource_version = None
            if unsynced:
                store.synced = False

    # The loop: one daemon thread per kind.

    def start(self) -> None:
        """Start listing and watching in the background; returns at once (see `wait_synced`)."""
        if self._threads:
            return
        self._stopping.clear()
        for kind in ROLE_KINDS:
            thread = threading.Thread(
                target=self._run, args=(kind,), name=f"bulwark-{kind.lower()}-watch", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the watches and wait up to `timeout` seconds for the threads to end."""
        self._stopping.set()
        self._api.interrupt()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _run(self, kind: RoleKind) -> None:
        first, longest = self._backoff
        delay = first
        while not self._stopping.is_set():
            try:
                self._sync_once(kind)
                delay = first
            except WatchExpired as error:
                # The events since our version are gone; a relist restores them. The data
                # stays usable (and complete) meanwhile: the gap is one list call long.
                log.info("role watch expired, relisting", kind=kind, error=str(error))
                self.forget(kind, unsynced=False)
            except Exception as error:  # the thread must outlive any one failure
                if self._stopping.is_set():
                    break
                self.forget(kind, unsynced=True)
                if isinstance(error, KubeUnavailable):
                    log.warning("role watch failed", kind=kind, error=str(error), retry_in=delay)
                else:
                    log.exception("role watch crashed", kind=kind, retry_in=delay)
                self._stopping.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, longest)

    def _sync_once(self, kind: RoleKind) -> None:
        """List when needed, then follow one watch until the server ends it."""
        version = self.resource_version(kind)
        if version is None:
            items, version = self._api.list_roles(kind)
            self.apply_list(kind, items, version)
            log.info("roles listed", kind=kind, count=len(items), resource_version=version)

        started = time.monotonic()
        with contextlib.closing(
            self._api.watch_roles(kind, version, self._watch_seconds)
        ) as events:
            for event in events:
                if self._stopping.is_set():
                    return
                self.apply_event(kind, str(event.get("type")), event.get("object") or {})
        if time.monotonic() - started < self._shortest_watch:
            raise KubeUnavailable(f"the {kind} watch ended as soon as it started")


class KubernetesRoleApi:
    """`RoleApi` through the official kubernetes client, with its errors translated."""

    PAGE = 500

    def __init__(self, api_client: Any) -> None:
        # Imported here, not at the top: only the webhook server pays for the client.
        from kubernetes import client

        self._rbac = client.RbacAuthorizationV1Api(api_client)
        self._lock = threading.Lock()
        self._open: set[Any] = set()

    def _call(self, kind: RoleKind, **params: Any) -> Any:
        """The raw HTTP response of a list or watch call, or a translated error."""
        from kubernetes.client.exceptions import ApiException

        method: Any = (
            self._rbac.list_cluster_role
            if kind == "ClusterRole"
            else self._rbac.list_role_for_all_namespaces
        )
        try:
            return method(_preload_content=False, **params)
        except ApiException as error:
            if error.status == 410:
                raise WatchExpired(f"listing {kind}s: {error.reason}") from None
            raise KubeUnavailable(f"listing {kind}s: HTTP {error.status} {error.reason}") from None
        except (HTTPError, OSError) as error:
            raise KubeUnavailable(f"listing {kind}s: {error}") from None

    def list_roles(self, kind: RoleKind) -> tuple[list[Object], str]:
        items: list[Object] = []
        token: str | None = None
        while True:
            response = self._call(kind, limit=self.PAGE, _continue=token, _request_timeout=(10, 60))
            page = _decode(response.data, f"the {kind} list")
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or None
            if token is None:
                return items, str(metadata.get("resourceVersion") or "")

    def watch_roles(
        self, kind: RoleKind, resource_version: str, seconds: int
    ) -> Generator[Object, None, None]:
        response = self._call(
            kind,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            # No read timeout shorter than the watch itself: a quiet cluster sends nothing.
            _request_timeout=(10, seconds + 30),
        )
        with self._lock:
            self._open.add(response)
        try:
            for line in _lines(response):
                yield _decode(line, f"a {kind} watch event")
        except (HTTPError, OSError) as error:
            raise KubeUnavailable(f"the {kind} watch broke off: {error}") from None
        finally:
            with self._lock:
                self._open.discard(response)
            response.release_conn()

    def interrupt(self) -> None:
        with self._lock:
            responses = list(self._open)
        for response in responses:
            # shutdown() (urllib3 >= 2.3) unblocks a read in another thread; close() may not.
            getattr(response, "shutdown", response.close)()


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch stream, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


def _decode(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as error:
        raise KubeUnavailable(f"{what} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise KubeUnavailable(f"{what} is not a JSON object")
    return value


def role_cache_from_kubeconfig(kubeconfig: str | None) -> RoleCache:
    """A (not yet started) RoleCache for the cluster of `kubeconfig`.

    With None: the in-cluster service account when running in a pod (KUBERNETES_SERVICE_HOST
    is set), else the default kubeconfig (KUBECONFIG, ~/.kube/config). Nothing is contacted
    until `start()`.
    """
    from kubernetes import client
    from kubernetes import config as kube_config

    loaders: Any = kube_config  # its loaders carry no type annotations
    configuration = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            loaders.load_incluster_config(client_configuration=configuration)
        else:
            loaders.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (kube_config.ConfigException, OSError, ValueError, TypeError) as error:
        where = kubeconfig or "the in-cluster or default kubeconfig"
        raise KubeUnavailable(
            f"cannot configure the Kubernetes client from {where}: {error}"
        ) from None
    return RoleCache(KubernetesRoleApi(client.ApiClient(configuration)))
