"""Prometheus metrics. Labels never grow with objects: no names, no namespaces, no uids."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

# Admission latency is mostly sub-millisecond; the API server's deadline is seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics one server exposes, registered on their own registry.

    The recording methods keep each labelled child once it is made: `labels()` checks
    and locks on every call, which costs more than the increment itself. The label
    values are bounded (see the module docstring), so the caches are too.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bulwark_admission_requests",
            "Admission reviews answered.",
            ("webhook", "operation", "kind", "allowed"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "bulwark_admission_duration_seconds",
            "Time from a review's arrival to its answer.",
            ("webhook",),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.violations = Counter(
            "bulwark_policy_violations",
            "Violations found, by policy, check and how they were enforced.",
            ("policy", "check", "enforcement"),
            registry=self.registry,
        )
        self.errors = Counter(
            "bulwark_policy_errors",
            "Policies or mutations that raised instead of judging.",
            ("policy",),
            registry=self.registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, name: str, *labels: str) -> Any:
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(self, webhook: str, operation: str, kind: str, allowed: bool) -> None:
        allowed_label = "true" if allowed else "false"
        self._child(self.requests, "requests", webhook, operation, kind, allowed_label).inc()

    def observe_duration(self, webhook: str, seconds: float) -> None:
        self._child(self.duration, "duration", webhook).observe(seconds)

    def count_violation(self, policy: str, check: str, enforcement: str) -> None:
        self._child(self.violations, "violations", policy, check, enforcement).inc()

    def count_error(self, policy: str) -> None:
        self._child(self.errors, "errors", policy).inc()
