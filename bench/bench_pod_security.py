"""How long pod-security takes to judge a ten-container pod at level restricted.

Run it with:

    .venv/bin/python bench/bench_pod_security.py

It prints microseconds per judgement, the best of several timeit repeats, for a pod that
passes (every check runs to the end) and for one that fails in every container (every
message is written), and for the passing pod through the policy's entry point, as the
engine calls it (settings lookup and pod-spec location included; decoding the review is
not). The target is under 50 µs for the passing pod: admission sits in the path of every
`kubectl apply`, and a busy API server sends many reviews a second.
"""

from __future__ import annotations

import copy
import timeit
from collections.abc import Callable
from typing import Any

from webhook.config import settings_from_mapping
from webhook.podspec import find_pod_spec
from webhook.policies.pod_security import PodSecurity, judge_pod
from webhook.review import AdmissionRequest
from webhook.verdict import NoRoles, PolicyContext

CONTAINERS = 10
REPEATS = 7


def _container(index: int) -> dict[str, Any]:
    return {
        "name": f"app{index}",
        "image": "registry.example/app:1",
        "ports": [{"containerPort": 8080 + index}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080 + index}},
        "livenessProbe": {"tcpSocket": {"port": 8080 + index}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            "runAsUser": 1000 + index,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def passing_pod() -> dict[str, Any]:
    """A restricted pod with two init and eight regular containers, as real pods look."""
    containers = [_container(index) for index in range(CONTAINERS)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench", "namespace": "team-a", "annotations": {"team": "a"}},
        "spec": {
            "initContainers": containers[:2],
            "containers": containers[2:],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"name": "config", "configMap": {"name": "app"}},
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }


def failing_pod() -> dict[str, Any]:
    """The same pod with privileged, root, capability-adding containers on the host."""
    pod = copy.deepcopy(passing_pod())
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        container["securityContext"] = {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    return pod


def best_microseconds(judge: Callable[[], object]) -> float:
    """The best of REPEATS timeit runs, in microseconds per call."""
    timer = timeit.Timer(judge)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=REPEATS, number=number)) / number * 1e6


def policy_entry_point(pod: dict[str, Any]) -> Callable[[], object]:
    """`PodSecurity.check` on `pod` in a restricted namespace, the review decoded beforehand."""
    request = AdmissionRequest.model_validate(
        {
            "uid": "bench",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "object": pod,
        }
    )
    settings = settings_from_mapping({"podSecurity": {"defaultLevel": "restricted"}})
    context = PolicyContext(
        request=request, settings=settings, namespace="team-a", name="bench", roles=NoRoles()
    )
    policy = PodSecurity()
    return lambda: policy.check(pod, context)


def main() -> None:
    heading = f"pod-security, level restricted, {CONTAINERS} containers"
    for label, pod in (("passing", passing_pod()), ("failing", failing_pod())):
        spec = find_pod_spec("Pod", pod)
        assert spec is not None
        violations = len(judge_pod(spec, "restricted", "team-a"))
        micros = best_microseconds(lambda spec=spec: judge_pod(spec, "restricted", "team-a"))
        print(f"{heading}, {label} pod ({violations} violations): {micros:.1f} µs per judgement")
    micros = best_microseconds(policy_entry_point(passing_pod()))
    print(f"{heading}, passing pod, through PodSecurity.check: {micros:.1f} µs per judgement")
    print(f"(best of {REPEATS} timeit repeats; target: under 50 µs for the passing pod)")


if __name__ == "__main__":
    main()
