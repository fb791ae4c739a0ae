"""Write the AdmissionReviews the benchmarks replay, into bench/reviews/*.json.

Run from the repository root:

    .venv/bin/python bench/make_reviews.py

The reviews are shaped the way the API server sends them to a webhook after its own
mutating plugins have run: the ServiceAccount plugin's projected token volume, the
DefaultTolerationSeconds tolerations, the defaulted pod fields, and, for pods made by a
controller, the ownerReference to the ReplicaSet and the managedFields entry the field
manager writes before admission. The output is deterministic (fixed uids and times), so
the files can be committed and regenerated without a diff.

Three sizes:

- `pod-1c.json`: a one-container pod, as `kubectl run` makes it (about 3 KB);
- `pod-10c.json`: a ten-container pod made by a Deployment (about 27 KB);
- `pod-60c.json`: a sixty-container pod made by a Deployment (about 140 KB).

Every pod passes the baseline Pod Security level, so /validate admits them all (the
common case on a real cluster), and some containers lack resources, so /mutate answers
a patch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

OUT = Path(__file__).resolve().parent / "reviews"
CREATED = "2025-03-14T09:26:53Z"
NAMESPACE = "team-a"
TOKEN_VOLUME = "kube-api-access-7xq2m"


def _review(uid: str, pod: dict[str, Any], name: str, username: str) -> dict[str, Any]:
    resource = {"group": "", "version": "v1", "resource": "pods"}
    kind = {"group": "", "version": "v1", "kind": "Pod"}
    return {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": kind,
            "resource": resource,
            "requestKind": kind,
            "requestResource": resource,
            "name": name,
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": username_info(username),
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


def username_info(username: str) -> dict[str, Any]:
    if username.startswith("system:serviceaccount:"):
        return {
            "username": username,
            "uid": "0d6a2cf4-7b61-4a53-9f0e-2c1f7c0b8e11",
            "groups": [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
        }
    return {
        "username": username,
        "uid": "5b0e9c0e-2f3a-4c55-8d1e-6a0f3e2b7c44",
        "groups": ["developers", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=4f1c0e7d2b"]},
    }


def _token_volume() -> dict[str, Any]:
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {
                                    "apiVersion": "v1",
                                    "fieldPath": "metadata.namespace",
                                },
                            }
                        ]
                    }
                },
            ],
        },
    }


def _token_mount() -> dict[str, Any]:
    return {
        "name": TOKEN_VOLUME,
        "readOnly": True,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }


def _tolerations() -> list[dict[str, Any]]:
    return [
        {
            "key": f"node.kubernetes.io/{reason}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        }
        for reason in ("not-ready", "unreachable")
    ]


def _pod_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The fields the API server defaults on every pod before admission."""
    return {
        **spec,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": spec.get("securityContext", {}),
        "schedulerName": "default-scheduler",
        "tolerations": _tolerations(),
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }


def small_pod() -> dict[str, Any]:
    """A pod as `kubectl run web --image=... --port=8080` makes it."""
    container = {
        "name": "web",
        "image": "registry.example/team-a/web:1.27.3",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {},
        "volumeMounts": [_token_mount()],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "web",
            "namespace": NAMESPACE,
            "uid": "9a3c1f4e-5d2b-4e8a-b7c6-1f0e2d3c4b5a",
            "creationTimestamp": CREATED,
            "labels": {"run": "web"},
            "managedFields": [
                {
                    "manager": "kubectl-run",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": CREATED,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {".": {}, "f:run": {}}},
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"web"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:imagePullPolicy": {},
                                    "f:name": {},
                                    "f:ports": {
                                        ".": {},
                                        'k:{"containerPort":8080,"protocol":"TCP"}': {
                                            ".": {},
                                            "f:containerPort": {},
                                            "f:protocol": {},
                                        },
                                    },
                                    "f:resources": {},
                                    "f:terminationMessagePath": {},
                                    "f:terminationMessagePolicy": {},
                                }
                            },
                            "f:dnsPolicy": {},
                            "f:enableServiceLinks": {},
                            "f:restartPolicy": {},
                            "f:schedulerName": {},
                            "f:securityContext": {},
                            "f:terminationGracePeriodSeconds": {},
                        },
                    },
                }
            ],
        },
        "spec": _pod_defaults({"volumes": [_token_volume()], "containers": [container]}),
        "status": {},
    }


ROLES = ("api", "worker", "metrics", "proxy", "auth", "cache", "log", "sync", "audit", "mesh")


def _env(index: int) -> list[dict[str, Any]]:
    role = ROLES[index % len(ROLES)]
    return [
        {"name": "APP_ROLE", "value": role},
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "OTEL_SERVICE_NAME", "value": f"checkout-{role}-{index}"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "DATABASE_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "password"}},
        },
    ]


def _probe(path: str, port: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": delay,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }


def _container(index: int) -> dict[str, Any]:
    role = ROLES[index % len(ROLES)]
    port = 8080 + index
    container: dict[str, Any] = {
        "name": f"{role}-{index}",
        "image": f"registry.example/team-a/checkout-{role}@sha256:{index:02d}"
        + "5e0c3b7a9d1f2e4c6b8a0d2f4e6c8b0a2d4f6e8c0b2a4d6f8e0c2b4a6d8f0e",
        "args": [f"--listen=:{port}"],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": _env(index),
        "resources": {},
        "volumeMounts": [
            {"name": "config", "readOnly": True, "mountPath": "/etc/checkout"},
            {"name": "tmp", "mountPath": "/tmp"},
            _token_mount(),
        ],
        "livenessProbe": _probe("/healthz", port, 10),
        "readinessProbe": _probe("/readyz", port, 5),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 10001,
        },
    }
    # Every other container is a lean sidecar (a log shipper, a proxy): no probes, no ports.
    if index % 2:
        for key in ("args", "ports", "livenessProbe", "readinessProbe"):
            del container[key]
        container["env"] = container["env"][:1]
        container["volumeMounts"] = container["volumeMounts"][1:]
    # Two thirds of the containers are sized; the rest get pod-defaults' resources.
    if index % 3 != 2:
        container["resources"] = {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }
    return container


def _fields(value: Any) -> Any:
    """The fieldsV1 set naming every field in `value`, as the field manager records it."""
    if isinstance(value, dict):
        out: dict[str, Any] = {".": {}} if value else {}
        for key, item in value.items():
            out[f"f:{key}"] = _fields(item)
        return out
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        out = {".": {}}
        for item in value:
            keys = {k: item[k] for k in ("name", "containerPort", "protocol") if k in item}
            if not keys:
                keys = {k: v for k, v in item.items() if isinstance(v, str | int)}
            selector = orjson.dumps(keys).decode()
            out[f"k:{selector}"] = _fields(item)
        return out
    return {}


def deployment_pod(containers: int, uid: str) -> dict[str, Any]:
    """A pod that the ReplicaSet of Deployment `checkout` made, with `containers` containers."""
    labels = {
        "app.kubernetes.io/name": "checkout",
        "app.kubernetes.io/instance": "checkout-prod",
        "app.kubernetes.io/version": "4.12.0",
        "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/managed-by": "argocd",
        "pod-template-hash": "7d9f8c6b5",
    }
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "kubectl.kubernetes.io/restartedAt": "2025-03-14T09:20:11Z",
        "checksum/config": "3f9b2c1d8e7a6f5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
    }
    template_spec = {
        "volumes": [
            {"name": "config", "configMap": {"name": "checkout-config", "defaultMode": 420}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "tls", "secret": {"secretName": "checkout-tls", "defaultMode": 288}},
        ],
        "containers": [_container(index) for index in range(containers)],
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "checkout"}
                            },
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
            }
        ],
    }
    managed = {
        "f:metadata": {
            "f:annotations": _fields(annotations),
            "f:generateName": {},
            "f:labels": _fields(labels),
            "f:ownerReferences": {
                ".": {},
                'k:{"uid":"2c7e1a9b-4f3d-4b6e-8a5c-9d0e1f2a3b4c"}': {},
            },
        },
        "f:spec": _fields({k: v for k, v in template_spec.items() if k != "volumes"}),
    }
    spec = _pod_defaults(template_spec)
    spec["volumes"] = [*template_spec["volumes"], _token_volume()]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "checkout-7d9f8c6b5-",
            "namespace": NAMESPACE,
            "uid": uid,
            "creationTimestamp": CREATED,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-7d9f8c6b5",
                    "uid": "2c7e1a9b-4f3d-4b6e-8a5c-9d0e1f2a3b4c",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": CREATED,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": managed,
                }
            ],
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def reviews() -> dict[str, dict[str, Any]]:
    controller = "system:serviceaccount:kube-system:replicaset-controller"
    return {
        "pod-1c": _review(
            "7f3e2a10-0b1c-4d5e-8f90-a1b2c3d4e5f6", small_pod(), "web", "jane@example.com"
        ),
        "pod-10c": _review(
            "7f3e2a10-0b1c-4d5e-8f90-a1b2c3d4e510",
            deployment_pod(10, "4b1d2e3f-5a6b-4c7d-8e9f-0a1b2c3d4e10"),
            "",
            controller,
        ),
        "pod-60c": _review(
            "7f3e2a10-0b1c-4d5e-8f90-a1b2c3d4e560",
            deployment_pod(60, "4b1d2e3f-5a6b-4c7d-8e9f-0a1b2c3d4e60"),
            "",
            controller,
        ),
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, review in reviews().items():
        path = OUT / f"{name}.json"
        # Compact, as the API server sends it: the file is the request body byte for byte.
        data = orjson.dumps(review)
        path.write_bytes(data)
        print(f"{path}: {len(data)} bytes")


if __name__ == "__main__":
    main()
