"""Admission latency, throughput and memory of Bulwark, beside the floor and OPA.

Run from the repository root (`make bench` does):

    .venv/bin/python bench/run.py [--quick] [--only bulwark-validate,floor,...] [--wait-quiet 40]

It installs what it lacks and says so (wrk from Debian's packages, OPA from the Go module
proxy into .cache/bin, the Go load generator in bench/loadgen), starts every server itself
on 127.0.0.1, sends it the recorded reviews in bench/reviews, and writes the figures with
the commands that reproduce them to bench/results.md (raw numbers: bench/out/results.json).

Every load is bounded in time and count and aimed at loopback only. The server under test
is pinned to core 0 and the load generator to core 1, except in the workers comparison,
where both float over both cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
CACHE_BIN = ROOT / ".cache" / "bin"
CERTS = OUT / "certs"
VENV_BIN = ROOT / ".venv" / "bin"
OPA_VERSION = "v1.22.4"
OPA_PATH = "/v0/data/bulwark/admission/response"
REVIEWS = ("pod-1c", "pod-10c", "pod-60c")
RATES = (500, 1000)
SERVER_CPU, LOAD_CPU = "0", "1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody listens on now (other people run servers on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


PORTS = {"bulwark": free_port(), "floor": free_port(), "opa": free_port()}


@dataclass(frozen=True)
class Plan:
    """How long each step runs; --quick shortens everything for trial runs."""

    warmup: int = 2
    saturation: int = 10
    rate_seconds: int = 15
    soak_step: int = 50_000
    soak_steps: int = 8  # 400,000 reviews: growth is judged over the last 200,000
    workers_seconds: int = 10
    connections: int = 16
    saturation_runs: int = 2
    ratio_starts: int = 5  # alternating starts of Bulwark and the floor, for their ratio


QUICK = Plan(
    warmup=1,
    saturation=3,
    rate_seconds=4,
    soak_step=5_000,
    soak_steps=2,
    workers_seconds=3,
    ratio_starts=2,
)


def rel(path: Path | str) -> str:
    """A path as the commands in results.md write it: relative to the repository root."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def show(command: list[str]) -> str:
    return " ".join(rel(part) if part.startswith(str(ROOT)) else part for part in command)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- tools ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        say("installing wrk from Debian's packages: apt-get update && apt-get install -y wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed and apt-get could not install it")
    linked = subprocess.run(["ldd", found], capture_output=True, text=True, check=False).stdout
    if "libssl" not in linked:
        raise SystemExit(f"{found} is built without TLS (no libssl in ldd); it cannot test HTTPS")
    return "wrk"  # on PATH: the commands in results.md read as typed


def ensure_loadgen() -> Path:
    binary = CACHE_BIN / "loadgen"
    sources = [BENCH / "loadgen" / "main.go", BENCH / "loadgen" / "go.mod"]
    newest = max(source.stat().st_mtime for source in sources)
    if not binary.exists() or binary.stat().st_mtime < newest:
        say(f"building the load generator: go build -o {rel(binary)} (bench/loadgen)")
        CACHE_BIN.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=BENCH / "loadgen", check=True)
    return binary


def ensure_opa() -> Path:
    binary = CACHE_BIN / "opa"
    if binary.exists() and f"Version: {OPA_VERSION[1:]}" in tool_version([str(binary), "version"]):
        return binary
    command = ["go", "install", f"github.com/open-policy-agent/opa@{OPA_VERSION}"]
    say(f"installing OPA {OPA_VERSION}: GOBIN={rel(CACHE_BIN)} {' '.join(command)} (minutes)")
    CACHE_BIN.mkdir(parents=True, exist_ok=True)
    subprocess.run(command, env={**os.environ, "GOBIN": str(CACHE_BIN)}, check=True)
    return binary


def ensure_inputs() -> None:
    if not all((BENCH / "reviews" / f"{name}.json").exists() for name in REVIEWS):
        say("writing the recorded reviews: bench/make_reviews.py")
        subprocess.run([sys.executable, str(BENCH / "make_reviews.py")], check=True)
    if not (CERTS / "tls.crt").exists():
        say(f"making a CA and serving pair: bulwark certs --out {rel(CERTS)}")
        subprocess.run([str(VENV_BIN / "bulwark"), "certs", "--out", str(CERTS)], check=True)


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except OSError as error:
        return f"unavailable ({error})"
    return (done.stdout + done.stderr).strip()


# --- the machine ------------------------------------------------------------------------


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def busy_neighbours() -> list[str]:
    """Builds and test runs of other people on this machine, by command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(part.decode(errors="replace") for part in argv if part)
        if ("go build" in line or "pytest" in line or line.startswith("go test")) and (
            "bench/run.py" not in line
        ):
            found.append(f"{entry.name}: {line[:100]}")
    return found


def wait_quiet(minutes: float) -> dict[str, Any]:
    """Wait (up to `minutes`) for a 1-minute load under 0.5 and no builds or test runs."""
    deadline = time.monotonic() + minutes * 60
    while True:
        load, neighbours = loadavg(), busy_neighbours()
        if load < 0.5 and not neighbours:
            say(f"the machine is quiet (load {load})")
            return {"quiet": True, "load": load}
        if time.monotonic() >= deadline:
            say(f"the machine never got quiet: load {load}, {len(neighbours)} builds/tests")
            return {"quiet": False, "load": load, "neighbours": neighbours}
        say(f"waiting for quiet: load {load}, busy: {neighbours[:3]}")
        time.sleep(60)


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        "unknown",
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )  # fmt: skip
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "kernel": platform.release(),
    }


def versions(wrk: str, loadgen: Path, opa: Path) -> dict[str, str]:
    from importlib.metadata import version

    found = {"python": platform.python_version()}
    for package in ("uvicorn", "starlette", "pydantic", "orjson", "structlog", "uvloop",
                    "httptools", "prometheus-client"):  # fmt: skip
        found[package] = version(package)
    found["wrk"] = tool_version([wrk, "-v"]).splitlines()[0]
    found["loadgen"] = "bench/loadgen, " + tool_version(["go", "version"])
    opa_lines = tool_version([str(opa), "version"]).splitlines()
    found["opa"] = next((line for line in opa_lines if line.startswith("Version")), "?")
    return found


# --- processes --------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (the workers of `bulwark serve --workers N`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its descendants, from /proc/<pid>/stat."""
    total = 0
    for each in descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """VmRSS or VmHWM of `pid` and its descendants, in KiB."""
    total = 0
    for each in descendants(pid):
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith(key)), 0)
    return total


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    path: str
    pinned: bool = True
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        return (["taskset", "-c", SERVER_CPU] if self.pinned else []) + self.command

    @property
    def shown(self) -> str:
        env = " ".join(f"{key}={value}" for key, value in self.env.items())
        return (env + " " if env else "") + show(self.argv)

    def url(self, path: str | None = None) -> str:
        return f"https://127.0.0.1:{self.port}{path or self.path}"

    def start(self) -> None:
        free_or_die(self.port)
        log = (OUT / f"{self.name}.log").open("wb")
        say(f"starting {self.name}: {self.shown}")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, **self.env}, start_new_session=True,
        )  # fmt: skip
        self.wait_ready()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        body = (BENCH / "reviews" / "pod-1c.json").read_bytes()
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited early; see {rel(OUT / self.name)}.log")
            try:
                status, answer = post(self.port, self.path, body)
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200 and b'"allowed":true' in answer.replace(b" ", b""):
                return
            raise SystemExit(f"{self.name} answered {status}: {answer[:300]!r}")
        raise SystemExit(f"{self.name} was not ready in {timeout}s")

    def stop(self) -> None:
        """SIGTERM to the server (it drains), then to anything left in its process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)  # the group start_new_session made
        deadline = time.monotonic() + 30
        while group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                return True
    return False


def free_or_die(port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"127.0.0.1:{port} is taken; stop what listens there first")


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    """One HTTPS POST over a fresh connection, trusting only the bench CA."""
    import http.client

    context = ssl.create_default_context(cafile=str(CERTS / "ca.crt"))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def privileged_review() -> bytes:
    review = json.loads((BENCH / "reviews" / "pod-1c.json").read_bytes())
    review["request"]["object"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    return json.dumps(review).encode()


def check_denies(server: Server) -> None:
    """The server must deny a privileged pod, or its figures compare nothing."""
    status, answer = post(server.port, server.path, privileged_review())
    if status != 200 or b'"allowed":false' not in answer.replace(b" ", b""):
        raise SystemExit(f"{server.name} did not deny a privileged pod: {status} {answer[:300]!r}")


# --- load -------------------------------------------------------------------------------


def run_json(command: list[str], cpu: str | None = LOAD_CPU) -> dict[str, Any]:
    argv = (["taskset", "-c", cpu] if cpu is not None else []) + command
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{show(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["command"] = show(argv)
    return result


def wrk_command(
    wrk: str, url: str, review: str, seconds: int, threads: int, conns: int
) -> list[str]:
    return [
        wrk, f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(BENCH / "wrk" / "post.lua"), url, "--", str(BENCH / "reviews" / f"{review}.json"),
    ]  # fmt: skip


def saturate(wrk: str, server: Server, review: str, plan: Plan, **where: Any) -> dict[str, Any]:
    """Closed-loop throughput with wrk, and the server's CPU time per answered review.

    Two runs, the faster kept: on a shared machine a run is only ever slowed by others.
    `core_busy` is the share of one core the server used, so a run that did not load
    the server fully (the client, or someone else, held it back) shows as such.
    """
    url = server.url(where.get("path"))
    threads, cpu = where.get("threads", 1), where.get("cpu", LOAD_CPU)
    conns = where.get("conns", plan.connections)
    run_json(wrk_command(wrk, url, review, plan.warmup, threads, conns), cpu)
    runs = []
    for _ in range(plan.saturation_runs):
        before = cpu_seconds(server.pid)
        result = run_json(wrk_command(wrk, url, review, plan.saturation, threads, conns), cpu)
        spent = cpu_seconds(server.pid) - before
        seconds = result["duration_us"] / 1e6
        requests = result["requests"]
        result["throughput"] = requests / seconds
        result["cpu_ms_per_review"] = spent * 1000 / requests if requests else None
        result["server_cpu_seconds"] = spent
        result["core_busy"] = spent / seconds
        result["load"] = loadavg()
        if sum(result["errors"].values()):
            say(f"  errors: {result['errors']}")
        runs.append(result)
    best = max(runs, key=lambda run: run["throughput"])
    best["all_throughputs"] = [round(run["throughput"]) for run in runs]
    return best


def constant_rate(
    loadgen: Path, server: Server, review: str, rate: int, plan: Plan, path: str | None = None
) -> dict[str, Any]:
    command = [
        str(loadgen), "-rate", str(rate), "-duration", f"{plan.rate_seconds}s",
        "-warmup", f"{plan.warmup}s", "-conns", str(plan.connections),
        "-cacert", str(CERTS / "ca.crt"),
        "-target", f"{server.url(path)}={rel(BENCH / 'reviews' / f'{review}.json')}",
    ]  # fmt: skip
    return run_json(command)


# --- the steps --------------------------------------------------------------------------


def targets_under_test(opa: Path, only: set[str] | None) -> list[tuple[str, Server, str]]:
    bulwark = [str(VENV_BIN / "bulwark"), "serve", "--host", "127.0.0.1",
               "--port", str(PORTS["bulwark"]), "--cert-dir", str(CERTS)]  # fmt: skip
    floor = [str(VENV_BIN / "python"), str(BENCH / "floor.py"), "--port", str(PORTS["floor"]),
             "--cert-dir", str(CERTS)]  # fmt: skip
    opa_run = [str(opa), "run", "--server", "--addr", f"127.0.0.1:{PORTS['opa']}",
               "--tls-cert-file", str(CERTS / "tls.crt"),
               "--tls-private-key-file", str(CERTS / "tls.key"),
               "--disable-telemetry", "--log-level", "error",
               str(BENCH / "opa" / "policy.rego")]  # fmt: skip
    every = [
        (
            "bulwark-validate",
            Server("bulwark", bulwark, PORTS["bulwark"], "/validate"),
            "/validate",
        ),
        ("bulwark-mutate", Server("bulwark", bulwark, PORTS["bulwark"], "/validate"), "/mutate"),
        ("floor", Server("floor", floor, PORTS["floor"], "/validate"), "/validate"),
        ("opa", Server("opa", opa_run, PORTS["opa"], OPA_PATH, env={"GOMAXPROCS": "1"}), OPA_PATH),
    ]
    return [entry for entry in every if only is None or entry[0] in only]


def side_by_side(
    wrk: str, loadgen: Path, opa: Path, plan: Plan, only: set[str] | None
) -> list[dict[str, Any]]:
    rows = []
    for label, server, path in targets_under_test(opa, only):
        server.start()
        try:
            if label != "floor":
                check_denies(server)
            for review in REVIEWS:
                say(f"{label} {review}: saturation ({plan.saturation}s)")
                row: dict[str, Any] = {"target": label, "review": review, "server": server.shown}
                row["saturation"] = saturate(wrk, server, review, plan, path=path)
                row["rates"] = {}
                for rate in RATES:
                    if row["saturation"]["throughput"] < rate:
                        row["rates"][str(rate)] = None
                        say(f"  {rate}/s skipped: above capacity")
                        continue
                    say(f"  {rate}/s for {plan.rate_seconds}s")
                    row["rates"][str(rate)] = constant_rate(
                        loadgen, server, review, rate, plan, path
                    )
                rows.append(row)
                say(f"  {row['saturation']['throughput']:.0f}/s, "
                    f"{row['saturation']['cpu_ms_per_review']:.3f} CPU-ms/review")  # fmt: skip
            peak = status_kib(server.pid, "VmHWM")
            for row in rows:
                if row["target"] == label:
                    row["peak_rss_kib"] = peak
        finally:
            server.stop()
    return rows


def soak(loadgen: Path, plan: Plan) -> dict[str, Any]:
    """RSS of a fresh Bulwark at 0 and after each step of reviews (every size, both
    webhooks, round robin), to see whether memory settles or grows. The allocator keeps
    growing its arenas for the first 100,000 or so; growth is judged over the second half."""
    bulwark = Server("bulwark-soak", [str(VENV_BIN / "bulwark"), "serve", "--host", "127.0.0.1",
                     "--port", str(PORTS["bulwark"]), "--cert-dir", str(CERTS)],
                     PORTS["bulwark"], "/validate")  # fmt: skip
    targets = [
        f"{bulwark.url(path)}={rel(BENCH / 'reviews' / f'{review}.json')}"
        for review in REVIEWS
        for path in ("/validate", "/mutate")
    ]
    command = [str(loadgen), "-n", str(plan.soak_step), "-duration", "600s",
               "-conns", str(plan.connections), "-cacert", str(CERTS / "ca.crt")]  # fmt: skip
    for target in targets:
        command += ["-target", target]
    bulwark.start()
    try:
        result: dict[str, Any] = {
            "server": bulwark.shown,
            "rss_kib": {"0": status_kib(bulwark.pid, "VmRSS")},
        }
        for step in range(1, plan.soak_steps + 1):
            say(f"soak: {plan.soak_step} reviews (step {step})")
            run = run_json(command)
            if run["errors"]:
                say(f"  {run['errors']} errors: {run.get('first_error')}")
            result["rss_kib"][str(step * plan.soak_step)] = status_kib(bulwark.pid, "VmRSS")
            result[f"run{step}"] = run
        result["peak_rss_kib"] = status_kib(bulwark.pid, "VmHWM")
        result["command"] = run["command"]
        return result
    finally:
        bulwark.stop()


def workers(wrk: str, plan: Plan) -> list[dict[str, Any]]:
    """Reviews/s of the 1-container validate with 1 and 2 workers, nothing pinned."""
    rows = []
    for count in (1, 2):
        command = [str(VENV_BIN / "bulwark"), "serve", "--host", "127.0.0.1",
                   "--port", str(PORTS["bulwark"]), "--cert-dir", str(CERTS),
                   "--workers", str(count)]  # fmt: skip
        server = Server(f"bulwark-workers-{count}", command, PORTS["bulwark"], "/validate",
                        pinned=False)  # fmt: skip
        server.start()
        try:
            time.sleep(3)  # every worker up, not just the first to answer
            seconds = replace_plan(plan, saturation=plan.workers_seconds)
            result = saturate(wrk, server, "pod-1c", seconds, cpu=None, threads=2, conns=32)
            rows.append({"workers": count, "server": server.shown, **result})
            say(f"workers={count}: {result['throughput']:.0f}/s")
        finally:
            server.stop()
    return rows


def floor_ratio(wrk: str, opa: Path, plan: Plan) -> dict[str, Any]:
    """Bulwark's /validate against the floor on pod-1c, in alternating fresh starts.

    One server's throughput moves by about ±12% from one start to the next (measured: the
    floor read 16,373 to 20,640/s across five starts on a quiet machine), more than the
    margin a "half the floor" target leaves. So the two are started in turn
    `plan.ratio_starts` times each, one saturation run per start, and compared by their
    medians.
    """
    servers = {
        label: server for label, server, _ in targets_under_test(opa, {"bulwark-validate", "floor"})
    }
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in servers}
    once = replace_plan(plan, saturation_runs=1)
    for start in range(plan.ratio_starts):
        for label, server in servers.items():
            server.start()
            try:
                result = saturate(wrk, server, "pod-1c", once)
            finally:
                server.stop()
            runs[label].append(
                {
                    "throughput": result["throughput"],
                    "cpu_ms_per_review": result["cpu_ms_per_review"],
                }
            )
            say(f"ratio start {start + 1}, {label}: {result['throughput']:.0f}/s")
    medians = {
        label: {
            key: statistics.median(run[key] for run in found)
            for key in ("throughput", "cpu_ms_per_review")
        }
        for label, found in runs.items()
    }
    ours, floor = medians["bulwark-validate"], medians["floor"]
    return {
        "starts": plan.ratio_starts,
        "runs": runs,
        "medians": medians,
        "by_cpu": floor["cpu_ms_per_review"] / ours["cpu_ms_per_review"],
        "by_throughput": ours["throughput"] / floor["throughput"],
        "servers": {label: server.shown for label, server in servers.items()},
    }


def replace_plan(plan: Plan, **changes: int) -> Plan:
    return Plan(**{**plan.__dict__, **changes})


def merge(old: dict[str, Any], new: dict[str, Any], only: set[str]) -> dict[str, Any]:
    """`old` with the parts in `only` replaced by `new`'s, and a note of when and how
    quiet the machine was for them."""
    merged = dict(old)
    kept = [row for row in old.get("side_by_side", []) if row["target"] not in only]
    order = ["bulwark-validate", "bulwark-mutate", "floor", "opa"]
    merged["side_by_side"] = sorted(
        kept + new["side_by_side"],
        key=lambda row: (order.index(row["target"]), REVIEWS.index(row["review"])),
    )
    for part in ("soak", "workers", "ratio"):
        if part in only and part in new:
            merged[part] = new[part]
    note = {key: new[key] for key in ("started", "quiet", "load_before", "load_after")}
    merged["merged"] = [*old.get("merged", []), {"parts": sorted(only), **note}]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for trying the harness")
    parser.add_argument("--only", help="comma-separated: bulwark-validate, bulwark-mutate, floor, "
                        "opa, soak, workers, ratio")  # fmt: skip
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="first wait up to this long for load < 0.5 and no builds or tests",
    )
    parser.add_argument("--no-report", action="store_true", help="leave bench/results.md alone")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace just those figures in the last results.json",
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    plan = QUICK if args.quick else Plan()

    OUT.mkdir(parents=True, exist_ok=True)
    wrk, loadgen, opa = ensure_wrk(), ensure_loadgen(), ensure_opa()
    ensure_inputs()
    if args.wait_quiet:
        quiet = wait_quiet(args.wait_quiet)
    else:
        quiet = {"quiet": loadavg() < 0.5 and not busy_neighbours(), "load": loadavg()}
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "plan": plan.__dict__,
        "machine": machine(),
        "versions": versions(wrk, loadgen, opa),
        "quiet": quiet,
        "load_before": loadavg(),
        "neighbours_before": busy_neighbours(),
    }
    results["side_by_side"] = side_by_side(wrk, loadgen, opa, plan, only)
    if only is None or "soak" in only:
        results["soak"] = soak(loadgen, plan)
    if only is None or "workers" in only:
        results["workers"] = workers(wrk, plan)
    if only is None or "ratio" in only:
        results["ratio"] = floor_ratio(wrk, opa, plan)
    results["load_after"] = loadavg()
    results["neighbours_after"] = busy_neighbours()
    if args.merge and only is not None and (OUT / "results.json").exists():
        results = merge(json.loads((OUT / "results.json").read_text()), results, only)

    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    say(f"raw figures: {rel(OUT / 'results.json')}")
    if not args.no_report:
        from report import write_report

        write_report(results, BENCH / "results.md")
        say("figures: bench/results.md")


if __name__ == "__main__":
    main()
