"""The webhook configurations: one pure builder, and the step that applies them to a cluster.

The configurations are drawn so that Bulwark being down never locks a cluster out:

- the namespaces the control plane needs (`kube-system`, `kube-node-lease`) and Bulwark's
  own namespace are never sent to the webhooks, so the webhook's pods (and the cluster's
  own) stay schedulable while it is down (break-glass steps: docs/operations.md);
- entries are split by blast radius. Pods, Ingresses and RBAC bindings fail closed: an
  unjudged privileged pod or cluster-admin binding is the harm Bulwark exists to stop.
  Workload templates fail open: the pods they create are still judged on their own;
- mutation fails open too (see `_mutating_webhook`).

NB: a `namespaceSelector` never filters cluster-scoped objects, so ClusterRoleBindings are
sent to the webhook from everywhere (https://kubernetes.io/docs/reference/access-authn-authz/
extensible-admission-controllers/#matching-requests-namespaceselector).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509

from webhook.errors import BulwarkError, CertificateError

API_VERSION = "admissionregistration.k8s.io/v1"
NAME = "bulwark"
TIMEOUT_SECONDS = 5  # well under the API server's own 10 s default and its 30 s ceiling
# Never sent to the webhooks, whatever the namespace of Bulwark itself.
CONTROL_PLANE_NAMESPACES = ("kube-system", "kube-node-lease")
WRITES = ["CREATE", "UPDATE"]
EXIT_OK, EXIT_REFUSED = 0, 1

Config = dict[str, Any]


@dataclass(frozen=True)
class _Entry:
    """One webhook of a configuration: what it matches and how it fails."""

    name: str
    rules: list[Config]
    failure_policy: str


def _rule(group: str, version: str, resources: list[str], operations: list[str]) -> Config:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "resources": resources,
        "operations": operations,
        "scope": "*",
    }


VALIDATING = (
    _Entry(
        "pods.validate.bulwark.dev",
        [_rule("", "v1", ["pods", "pods/ephemeralcontainers"], WRITES)],
        "Fail",
    ),
    _Entry(
        # Fails open: a template slipping through still yields pods the entry above judges.
        "workloads.validate.bulwark.dev",
        [
            _rule(
                "apps", "v1", ["deployments", "replicasets", "statefulsets", "daemonsets"], WRITES
            ),
            _rule("batch", "v1", ["jobs", "cronjobs"], WRITES),
            _rule("", "v1", ["replicationcontrollers", "podtemplates"], WRITES),
        ],
        "Ignore",
    ),
    _Entry(
        # matchPolicy Equivalent also sends extensions/v1beta1 and networking.k8s.io/v1beta1
        # Ingresses (older clusters), converted to networking.k8s.io/v1.
        "ingresses.validate.bulwark.dev",
        [
            _rule("networking.k8s.io", "v1", ["ingresses"], WRITES),
            _rule("traefik.io", "v1alpha1", ["ingressroutes"], WRITES),
            _rule("traefik.containo.us", "v1alpha1", ["ingressroutes"], WRITES),
        ],
        "Fail",
    ),
    _Entry(
        "rbac.validate.bulwark.dev",
        [_rule("rbac.authorization.k8s.io", "v1", ["rolebindings", "clusterrolebindings"], WRITES)],
        "Fail",
    ),
)


def _client_config(
    path: str, *, ca_bundle: bytes | None, url: str | None, namespace: str, service: str
) -> Config:
    config: Config
    if url is not None:
        config = {"url": f"{url.rstrip('/')}{path}"}
    else:
        config = {"service": {"namespace": namespace, "name": service, "path": path, "port": 443}}
    # Without a bundle the field is left out, for cert-manager's CA injector to fill in.
    if ca_bundle is not None:
        config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    return config


def _webhook(entry: _Entry, client_config: Config, namespace: str) -> Config:
    excluded = list(dict.fromkeys([*CONTROL_PLANE_NAMESPACES, namespace]))
    return {
        "name": entry.name,
        "clientConfig": client_config,
        "rules": entry.rules,
        "failurePolicy": entry.failure_policy,
        "matchPolicy": "Equivalent",
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
            ]
        },
        "objectSelector": {},
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1", "v1beta1"],
    }


def _mutating_webhook(client_config: Config, namespace: str) -> Config:
    pods = _Entry("pods.mutate.bulwark.dev", [_rule("", "v1", ["pods"], ["CREATE"])], "Ignore")
    # Ignore: the defaults (fsGroup, requests and limits) are conveniences, not controls.
    # A pod admitted without them is still judged by the validating webhook, which fails
    # closed; failing closed here as well would only widen an outage to every pod.
    # IfNeeded: another mutating webhook may add a container after Bulwark has run.
    return {**_webhook(pods, client_config, namespace), "reinvocationPolicy": "IfNeeded"}


def _metadata() -> Config:
    return {"name": NAME, "labels": {"app.kubernetes.io/name": "bulwark"}}


def build_configurations(
    *, ca_bundle: bytes | None, url: str | None, namespace: str, service: str
) -> list[Config]:
    """The ValidatingWebhookConfiguration and MutatingWebhookConfiguration, in that order.

    `url` (the base URL of a webhook outside the cluster) replaces the service reference;
    `ca_bundle` is the PEM of the CA that signed the serving certificate.
    """
    if url is not None:
        _check_url(url)
    validating, mutating = (
        _client_config(path, ca_bundle=ca_bundle, url=url, namespace=namespace, service=service)
        for path in ("/validate", "/mutate")
    )
    configurations = [
        {
            "apiVersion": API_VERSION,
            "kind": "ValidatingWebhookConfiguration",
            "metadata": _metadata(),
            "webhooks": [_webhook(entry, validating, namespace) for entry in VALIDATING],
        },
        {
            "apiVersion": API_VERSION,
            "kind": "MutatingWebhookConfiguration",
            "metadata": _metadata(),
            "webhooks": [_mutating_webhook(mutating, namespace)],
        },
    ]
    # Each call returns objects of its own: nothing the caller edits leaks into the next.
    return copy.deepcopy(configurations)


# A DNS name: labels of letters, digits and '-', joined by dots.
_DNS_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def _check_url(url: str) -> None:
    # The API server accepts only https URLs without user info, query or fragment.
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise BulwarkError(f"--url must be an https:// URL with a host, not {url!r}")
    if not _DNS_NAME.fullmatch(parts.hostname) and not _is_ip_address(parts.hostname):
        raise BulwarkError(f"--url must name a DNS name or an IP address as its host: {url!r}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise BulwarkError(
            f"--url has a port that is not a number from 0 to 65535: {url!r}"
        ) from None
    if any(character.isspace() or not character.isprintable() for character in url):
        raise BulwarkError(f"--url must not hold spaces or control characters: {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BulwarkError(f"--url must have no user, query or fragment: {url!r}")
    if parts.path.rstrip("/").endswith(("/validate", "/mutate")):
        raise BulwarkError(
            f"--url is the base URL; /validate and /mutate are added to it: drop the path "
            f"of {url!r}"
        )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def read_ca_bundle(path: str | None) -> bytes | None:
    """The PEM bytes of `path`, checked to hold at least one certificate; None for None."""
    if path is None:
        return None
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise CertificateError(f"cannot read --ca-bundle {path}: {error.strerror}") from None
    try:
        x509.load_pem_x509_certificates(content)
    except ValueError:
        raise CertificateError(f"--ca-bundle {path} holds no PEM certificate") from None
    return content


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: anchors and aliases confuse people and linters."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(configurations: list[Config]) -> str:
    """The configurations as one multi-document YAML stream, keys in the builder's order."""
    return yaml.dump_all(
        configurations, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False
    )


def print_manifests(*, ca_bundle: str | None, url: str | None, namespace: str, service: str) -> int:
    """`bulwark manifests`: print both configurations as YAML."""
    bundle = read_ca_bundle(ca_bundle)
    configurations = build_configurations(
        ca_bundle=bundle, url=url, namespace=namespace, service=service
    )
    sys.stdout.write(render(configurations))
    return EXIT_OK


def register(
    *, kubeconfig: str | None, ca_bundle: str | None, url: str | None, namespace: str, service: str
) -> int:
    """`bulwark register`: create or update both configurations, one line for each.

    Idempotent: a configuration that already holds what the builder makes is left alone
    and reported `unchanged`, so a second run changes nothing. 0 when both are in place,
    1 when the API server refuses or cannot be reached; bad inputs raise (exit 2).
    """
    bundle = read_ca_bundle(ca_bundle)
    configurations = build_configurations(
        ca_bundle=bundle, url=url, namespace=namespace, service=service
    )
    # The kubernetes client loads slowly and only this command needs it.
    import urllib3
    from kubernetes.client import AdmissionregistrationV1Api
    from kubernetes.client.exceptions import ApiException

    api = AdmissionregistrationV1Api(_api_client(kubeconfig))
    for desired in configurations:
        kind, name = desired["kind"], desired["metadata"]["name"]
        try:
            outcome = _apply(api, desired)
        except ApiException as error:
            print(
                f"bulwark register: error: the API server refused {kind} {name}: "
                f"{error.status} {error.reason}{_status_message(error.body)}",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        except urllib3.exceptions.HTTPError as error:
            print(f"bulwark register: error: cannot reach the API server: {error}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"{kind.lower()}.admissionregistration.k8s.io/{name} {outcome}")
    return EXIT_OK


def _api_client(kubeconfig: str | None) -> Any:
    """A kubernetes ApiClient from `kubeconfig`, else in-cluster, else the default kubeconfig."""
    from kubernetes import client
    from kubernetes import config as untyped_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = untyped_config  # NB: its loaders carry no annotations

    if kubeconfig is not None and not Path(kubeconfig).is_file():
        raise BulwarkError(f"--kubeconfig {kubeconfig}: no such file")
    in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    where = kubeconfig or (
        "the pod's service account"
        if in_cluster
        else "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
    )
    try:
        if in_cluster:
            config.load_incluster_config()
            return client.ApiClient()
        return config.new_client_from_config(config_file=kubeconfig)
    except ConfigException as error:
        raise BulwarkError(f"cannot use {where}: {error}") from None
    # NB: the loader meets YAML that is not a kubeconfig with TypeError, KeyError and kin.
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise BulwarkError(f"cannot use {where}: not a readable kubeconfig ({reason})") from None


_METHODS = {
    "ValidatingWebhookConfiguration": "validating_webhook_configuration",
    "MutatingWebhookConfiguration": "mutating_webhook_configuration",
}


def _apply(api: Any, desired: Config) -> str:
    """Create, replace or leave one configuration; say which."""
    from kubernetes.client.exceptions import ApiException

    suffix, name = _METHODS[desired["kind"]], desired["metadata"]["name"]
    try:
        found = getattr(api, f"read_{suffix}")(name)
    except ApiException as error:
        if error.status != 404:
            raise
        getattr(api, f"create_{suffix}")(desired)
        return "created"
    current: Config = api.api_client.sanitize_for_serialization(found)
    if _holds(current, desired):
        return "unchanged"
    getattr(api, f"replace_{suffix}")(name, _replacement(current, desired))
    return "updated"


def _holds(current: Any, desired: Any) -> bool:
    """True if `current` has every field of `desired`, with the same value.

    Fields the API server fills in (uid, resourceVersion, managedFields, defaults) and
    labels or annotations others added are not differences. Lists must match item by item.
    """
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            key in current and _holds(current[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(current) == len(desired)
            and all(_holds(have, want) for have, want in zip(current, desired, strict=True))
        )
    return bool(current == desired)


def _replacement(current: Config, desired: Config) -> Config:
    """`desired`, carrying over what a replace must not lose from `current`.

    The resourceVersion makes the replace fail rather than overwrite a concurrent change;
    others' labels and annotations stay; and when no caBundle is given (cert-manager's
    injector owns it) the injected one stays, so the webhooks keep working meanwhile.
    """
    metadata = current.get("metadata", {})
    injected = {
        hook.get("name"): hook.get("clientConfig", {}).get("caBundle")
        for hook in current.get("webhooks", [])
    }
    webhooks = []
    for hook in desired["webhooks"]:
        client_config = dict(hook["clientConfig"])
        if "caBundle" not in client_config and injected.get(hook["name"]):
            client_config["caBundle"] = injected[hook["name"]]
        webhooks.append({**hook, "clientConfig": client_config})
    return {
        **desired,
        "metadata": {
            "name": desired["metadata"]["name"],
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": {**metadata.get("labels", {}), **desired["metadata"]["labels"]},
            "annotations": metadata.get("annotations", {}),
        },
        "webhooks": webhooks,
    }


def _status_message(body: Any) -> str:
    """The message of a Status object in an API error body, if it has one."""
    try:
        message = json.loads(body).get("message")
    except (TypeError, ValueError, AttributeError):
        return ""
    return f": {message}" if message else ""
