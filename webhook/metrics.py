"""Prometheus metrics. Labels never grow with objects: no names, no namespaces, no uids.

The numbers are plain integers in dictionaries, turned into Prometheus metric families only
when /metrics is scraped. prometheus_client's own Counter and Histogram take a lock and look
up the labelled child on every increment: four of those per admission cost more than the
log line. The recording methods must be called from one thread (the server calls them on
its event loop's), which is also where /metrics reads them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

# Admission latency is mostly sub-millisecond; the API server's deadline is seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUEST_LABELS = ("webhook", "operation", "kind", "allowed")
VIOLATION_LABELS = ("policy", "check", "enforcement")


class _Durations:
    """One histogram's counts per bucket (not yet cumulative) and its sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0


class Metrics:
    """The metrics one server exposes, on a registry of their own."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, str, str], int] = {}
        self._durations: dict[str, _Durations] = {}
        self._violations: dict[tuple[str, str, str], int] = {}
        self._errors: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def count_request(self, webhook: str, operation: str, kind: str, allowed: bool) -> None:
        key = (webhook, operation, kind, "true" if allowed else "false")
        self._requests[key] = self._requests.get(key, 0) + 1

    def observe_duration(self, webhook: str, seconds: float) -> None:
        durations = self._durations.get(webhook)
        if durations is None:
            durations = self._durations[webhook] = _Durations()
        durations.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        durations.sum += seconds

    def count_violation(self, policy: str, check: str, enforcement: str) -> None:
        key = (policy, check, enforcement)
        self._violations[key] = self._violations.get(key, 0) + 1

    def count_error(self, policy: str) -> None:
        self._errors[policy] = self._errors.get(policy, 0) + 1

    def collect(self) -> Iterator[Metric]:
        """The metric families, as prometheus_client's registry asks a collector for them."""
        requests = CounterMetricFamily(
            "bulwark_admission_requests", "Admission reviews answered.", labels=REQUEST_LABELS
        )
        for labels, count in self._requests.items():
            requests.add_metric(labels, count)
        yield requests

        durations = HistogramMetricFamily(
            "bulwark_admission_duration_seconds",
            "Time from a review's arrival to its answer.",
            labels=("webhook",),
        )
        for webhook, histogram in self._durations.items():
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*DURATION_BUCKETS, float("inf")), histogram.counts, strict=True
            ):
                cumulative += count
                buckets.append((_le(bound), cumulative))
            durations.add_metric((webhook,), buckets, histogram.sum)
        yield durations

        violations = CounterMetricFamily(
            "bulwark_policy_violations",
            "Violations found, by policy, check and how they were enforced.",
            labels=VIOLATION_LABELS,
        )
        for violation, count in self._violations.items():
            violations.add_metric(violation, count)
        yield violations

        errors = CounterMetricFamily(
            "bulwark_policy_errors",
            "Policies or mutations that raised instead of judging.",
            labels=("policy",),
        )
        for policy, count in self._errors.items():
            errors.add_metric((policy,), count)
        yield errors


def _le(bound: float) -> str:
    """A bucket's `le` label as Prometheus writes it (`0.005`, `1.0`, `+Inf`)."""
    return "+Inf" if bound == float("inf") else repr(bound)
