"""The metrics exposition: counters and a cumulative histogram, as Prometheus reads them."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from webhook.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_and_violations_are_counted_per_label_set() -> None:
    metrics = Metrics()
    metrics.count_request("validate", "CREATE", "Pod", False)
    metrics.count_request("validate", "CREATE", "Pod", False)
    metrics.count_request("mutate", "CREATE", "Pod", True)
    metrics.count_violation("pod-security", "privileged", "deny")
    metrics.count_error("ingress-tls")
    samples = _samples(metrics)
    denied = (
        ("allowed", "false"),
        ("kind", "Pod"),
        ("operation", "CREATE"),
        ("webhook", "validate"),
    )
    assert samples[("bulwark_admission_requests_total", denied)] == 2
    mutated = (("allowed", "true"), ("kind", "Pod"), ("operation", "CREATE"), ("webhook", "mutate"))
    assert samples[("bulwark_admission_requests_total", mutated)] == 1
    violation = (("check", "privileged"), ("enforcement", "deny"), ("policy", "pod-security"))
    assert samples[("bulwark_policy_violations_total", violation)] == 1
    assert samples[("bulwark_policy_errors_total", (("policy", "ingress-tls"),))] == 1


def test_durations_fill_cumulative_buckets_with_the_bound_itself_included() -> None:
    metrics = Metrics()
    for seconds in (0.0007, 0.001, 0.003, 10.0):
        metrics.observe_duration("validate", seconds)
    samples = _samples(metrics)

    def bucket(le: str) -> float:
        labels = (("le", le), ("webhook", "validate"))
        return samples[("bulwark_admission_duration_seconds_bucket", labels)]

    assert (bucket("0.0005"), bucket("0.001"), bucket("0.005"), bucket("5.0")) == (0, 2, 3, 3)
    assert bucket("+Inf") == 4
    assert samples[("bulwark_admission_duration_seconds_count", (("webhook", "validate"),))] == 4
    total = samples[("bulwark_admission_duration_seconds_sum", (("webhook", "validate"),))]
    assert abs(total - 10.0047) < 1e-9


def test_nothing_recorded_still_exposes_every_family() -> None:
    text = generate_latest(Metrics().registry).decode()
    for name in (
        "bulwark_admission_requests",
        "bulwark_admission_duration_seconds",
        "bulwark_policy_violations",
        "bulwark_policy_errors",
    ):
        assert f"# TYPE {name}" in text
