"""bench/results.md from the figures bench/run.py measured (bench/out/results.json).

.venv/bin/python bench/report.py   # rewrite results.md from the last results.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
MIB = 1024
# "No growth": the second step of the soak may add at most this much resident memory.
GROWTH_LIMIT_KIB = 1024

LABELS = {
    "bulwark-validate": "Bulwark /validate",
    "bulwark-mutate": "Bulwark /mutate",
    "floor": "floor (bench/floor.py)",
    "opa": "OPA (bench/opa/policy.rego)",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(results: dict[str, Any], target: str, review: str) -> dict[str, Any] | None:
    for row in results.get("side_by_side", []):
        if row["target"] == target and row["review"] == review:
            return row
    return None


def _throughput(results: dict[str, Any], target: str, review: str) -> float | None:
    row = _row(results, target, review)
    return None if row is None else float(row["saturation"]["throughput"])


def _p99(results: dict[str, Any], target: str, review: str, rate: int) -> float | None:
    row = _row(results, target, review)
    run = None if row is None else row["rates"].get(str(rate))
    return None if run is None else float(run["latency_ms"]["p99"])


def _header(results: dict[str, Any]) -> list[str]:
    machine, quiet = results["machine"], results["quiet"]
    noise = (
        "quiet (1-minute load under 0.5, no builds or test runs)"
        if quiet.get("quiet")
        else "NOT quiet: the figures carry other people's load (see the load averages)"
    )
    lines = [
        "# Bulwark benchmark results",
        "",
        f"Measured {results['started']} by `make bench` (`.venv/bin/python bench/run.py"
        f"{' --quick' if results['quick'] else ''}`); raw figures in `bench/out/results.json`.",
        "How the harness works and what the figures mean: `bench/README.md`.",
        "",
        "## Machine",
        "",
        f"- {machine['nproc']} CPUs: {machine['cpu']}; {machine['memory_gib']} GiB memory; "
        f"Linux {machine['kernel']}",
        f"- the machine was {noise}; 1-minute load average {results['load_before']} before, "
        f"{results['load_after']} after",
    ]
    for note in results.get("merged", []):
        lines.append(
            f"- re-measured {note['started']} with `--only {','.join(note['parts'])} --merge`: "
            f"{'quiet' if note['quiet'].get('quiet') else 'NOT quiet'}, load "
            f"{note['load_before']} before, {note['load_after']} after"
        )
    for key in ("neighbours_before", "neighbours_after"):
        if results.get(key):
            lines.append(f"- {key.replace('_', ' ')}: " + "; ".join(results[key][:5]))
    lines += ["", "## Versions", ""]
    lines += [f"- {name}: {value}" for name, value in results["versions"].items()]
    plan = results["plan"]
    lines += [
        "",
        "## Method",
        "",
        "- Server pinned to core 0 (`taskset -c 0`), load generator to core 1 (`taskset -c 1`),"
        " over TLS 1.3 on 127.0.0.1 with keep-alive; Bulwark logs its canonical JSON line for "
        "every review (to `bench/out/*.log`).",
        f"- Throughput: wrk, closed loop, {plan['connections']} connections, "
        f"{plan['saturation']} s after a {plan['warmup']} s warm-up. CPU ms per review: the "
        "server's utime+stime (/proc/PID/stat) over the run divided by the reviews answered.",
        f"- Latency: bench/loadgen at a constant rate (open loop: each request has a scheduled "
        f"send time and its latency counts from it), {plan['connections']} keep-alive "
        f"connections, {plan['rate_seconds']} s after a {plan['warmup']} s warm-up. A rate above "
        "the measured saturation throughput is skipped (-). In brackets: the p99 of how late "
        "requests left the generator, already included in the latency (a request waiting for "
        "one of the 16 connections to be free counts as late).",
        "- Peak RSS: VmHWM of the server after all its runs.",
    ]
    return lines


def _side_by_side(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Throughput, CPU, latency and memory, side by side",
        "",
        "| server | review | reviews/s | core busy | CPU ms/review | p50 / p99 ms at 500/s "
        "| p50 / p99 ms at 1,000/s | peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results.get("side_by_side", []):
        saturation = row["saturation"]
        cells = []
        for rate in ("500", "1000"):
            run = row["rates"].get(rate)
            cells.append(
                "-"
                if run is None
                else f"{_ms(run['latency_ms'].get('p50'))} / {_ms(run['latency_ms'].get('p99'))}"
                + f" ({_ms(run.get('start_lag_ms', {}).get('p99'))})"
                + (f" ({run['errors']} errors)" if run["errors"] else "")
            )
        lines.append(
            f"| {LABELS[row['target']]} | {row['review']} | {saturation['throughput']:,.0f} "
            f"| {saturation.get('core_busy', 0):.0%} "
            f"| {saturation['cpu_ms_per_review']:.3f} | {cells[0]} | {cells[1]} "
            f"| {row.get('peak_rss_kib', 0) / MIB:.0f} |"
        )
    lines += ["", "### The commands behind each row", ""]
    seen_servers = set()
    for row in results.get("side_by_side", []):
        if row["server"] not in seen_servers:
            seen_servers.add(row["server"])
            lines += [f"Server ({LABELS[row['target']].split(' ')[0]}):", "", "```",
                      row["server"], "```", ""]  # fmt: skip
        lines.append(f"{LABELS[row['target']]}, {row['review']}:")
        lines.append("")
        lines.append("```")
        lines.append(row["saturation"]["command"] + "   # reviews/s, CPU ms/review")
        for rate, run in row["rates"].items():
            if run is not None:
                lines.append(run["command"] + f"   # p50/p99 at {rate}/s")
        lines += ["```", ""]
    return lines


def _ratios(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Ratios",
        "",
        "Bulwark /validate against each reference, by reviews/s and by CPU per review "
        "(reference's CPU ms ÷ Bulwark's: the throughput ratio a fully loaded core would give, "
        "whatever held a run back).",
        "",
        "| review | ÷ floor, reviews/s | ÷ floor, CPU | ÷ OPA, reviews/s | ÷ OPA, CPU |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for review in ("pod-1c", "pod-10c", "pod-60c"):
        ours = _row(results, "bulwark-validate", review)
        if ours is None:
            continue
        mine = ours["saturation"]
        cells = []
        for other in (_row(results, "floor", review), _row(results, "opa", review)):
            if other is None:
                cells += ["-", "-"]
                continue
            theirs = other["saturation"]
            cells.append(f"{mine['throughput'] / theirs['throughput']:.2f}")
            cells.append(f"{theirs['cpu_ms_per_review'] / mine['cpu_ms_per_review']:.2f}")
        lines.append(f"| {review} | " + " | ".join(cells) + " |")
    lines.append("")
    ratio, plan = results.get("ratio"), results["plan"]
    if ratio is not None:
        lines += [
            f"Against the floor in {ratio['starts']} alternating fresh starts of each, pod-1c, "
            "one saturation run per start (the target below is judged on these medians: one "
            "start moves by about ±12%):",
            "",
            "| server | reviews/s, each start | CPU ms/review, each start | median reviews/s "
            "| median CPU ms |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        for label, runs in ratio["runs"].items():
            median = ratio["medians"][label]
            rates = ", ".join(f"{run['throughput']:,.0f}" for run in runs)
            cpus = ", ".join(f"{run['cpu_ms_per_review']:.3f}" for run in runs)
            lines.append(
                f"| {LABELS.get(label, label)} | {rates} | {cpus} "
                f"| {median['throughput']:,.0f} | {median['cpu_ms_per_review']:.3f} |"
            )
        lines += [
            "",
            f"Ratio of the medians: {ratio['by_cpu']:.3f} by CPU, {ratio['by_throughput']:.3f} "
            "by reviews/s. Servers: "
            + "; ".join(f"`{shown}`" for shown in ratio["servers"].values())
            + (
                f"; load: wrk -t1 -c{plan['connections']} -d{plan['saturation']}s "
                f"after a {plan['warmup']} s warm-up, as in the table above."
            ),
            "",
        ]
    return lines


def _soak(results: dict[str, Any]) -> list[str]:
    soak = results.get("soak")
    if soak is None:
        return []
    rss = soak["rss_kib"]
    steps = list(rss)
    return [
        "## Memory under a long run",
        "",
        "A fresh Bulwark answers the six reviews (three sizes x /validate, /mutate) round "
        "robin, closed loop; VmRSS after each step:",
        "",
        "| reviews answered | " + " | ".join(steps) + " | peak (VmHWM) |",
        "| --- | " + " | ".join("---:" for _ in steps) + " | ---: |",
        "| RSS MiB | "
        + " | ".join(f"{rss[step] / MIB:.1f}" for step in steps)
        + f" | {soak['peak_rss_kib'] / MIB:.1f} |",
        "",
        "```",
        soak["server"],
        soak["command"]
        + f"   # run {len(steps) - 1} times; VmRSS from /proc/PID/status before and after each",
        "```",
        "",
    ]


def _workers(results: dict[str, Any]) -> list[str]:
    rows = results.get("workers")
    if not rows:
        return []
    lines = [
        "## One worker and two",
        "",
        "pod-1c on /validate; server and wrk (2 threads, 32 connections) both unpinned, "
        "sharing the two cores.",
        "",
        "| workers | reviews/s | CPU ms/review | command |",
        "| ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['workers']} | {row['throughput']:,.0f} | {row['cpu_ms_per_review']:.3f} "
            f"| `{row['server']}` then `{row['command']}` |"
        )
    return [*lines, ""]


def _targets(results: dict[str, Any]) -> list[str]:
    lines = ["## Targets (one worker, 2-core machine)", "", "| target | measured | met |",
             "| --- | --- | --- |"]  # fmt: skip

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("yes" if ok else "**no**")

    ours = _row(results, "bulwark-validate", "pod-1c")
    if ours is not None:
        saturation = ours["saturation"]
        floor = _throughput(results, "floor", "pod-1c")
        floor_row = _row(results, "floor", "pod-1c")
        by_cpu = (
            floor_row["saturation"]["cpu_ms_per_review"] / saturation["cpu_ms_per_review"]
            if floor_row
            else None
        )
        by_rate = saturation["throughput"] / floor if floor else None
        ratio = results.get("ratio")
        if ratio is not None:  # the medians of alternating starts, when measured
            by_cpu, by_rate = ratio["by_cpu"], ratio["by_throughput"]
        p99 = _p99(results, "bulwark-validate", "pod-1c", 1000)
        lines += [
            f"| ≥ 5,000 validate reviews/s, 1-container pod | {saturation['throughput']:,.0f}/s "
            f"| {verdict(saturation['throughput'] >= 5000)} |",
            f"| ≤ 0.2 CPU ms per review | {saturation['cpu_ms_per_review']:.3f} ms "
            f"| {verdict(saturation['cpu_ms_per_review'] <= 0.2)} |",
            "| ≥ half the floor's throughput (judged by CPU per review, which a busy "
            "neighbour or a client-bound run does not distort) | "
            + (
                f"{by_cpu:.3f} of the floor by CPU, {by_rate:.3f} by reviews/s"
                + (f" (medians of {ratio['starts']} alternating starts)" if ratio else "")
                if by_rate and by_cpu
                else "-"
            )
            + f" | {verdict(None if by_cpu is None else by_cpu >= 0.5)} |",
            f"| p99 ≤ 5 ms at 1,000 reviews/s | {_ms(p99)} ms "
            f"| {verdict(None if p99 is None else p99 <= 5)} |",
        ]
    soak = results.get("soak")
    if soak is not None:
        rss = {int(count): kib for count, kib in soak["rss_kib"].items()}
        counts = sorted(rss)
        at = 100_000 if 100_000 in rss else counts[-1]
        settled = counts[len(counts) // 2]  # growth is judged over the second half
        growth = rss[counts[-1]] - rss[settled]
        lines.append(
            f"| RSS ≤ 120 MiB after {at:,} reviews, and no growth (≤ {GROWTH_LIMIT_KIB // MIB} "
            f"MiB from {settled:,} to {counts[-1]:,}) | {rss[at] / MIB:.1f} MiB; "
            f"{growth / MIB:+.1f} MiB from {settled:,} to {counts[-1]:,} "
            f"| {verdict(rss[at] <= 120 * MIB and growth <= GROWTH_LIMIT_KIB)} |"
        )
    return [*lines, ""]


def write_report(results: dict[str, Any], path: Path) -> None:
    lines = [
        *_header(results),
        *_side_by_side(results),
        *_ratios(results),
        *_soak(results),
        *_workers(results),
        *_targets(results),
    ]
    path.write_text("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    write_report(json.loads((BENCH / "out" / "results.json").read_text()), BENCH / "results.md")
