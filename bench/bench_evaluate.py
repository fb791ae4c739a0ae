"""How fast `bulwark evaluate` judges a tree of manifests, and how fast it starts.

    .venv/bin/python bench/bench_evaluate.py [--objects 10000] [--runs 7] [--keep DIR]
    .venv/bin/python bench/bench_evaluate.py --objects 2000 --instructions

Writes a tree of typical pods and deployments (about one in eight denied, several
documents per file, nested folders) into a temporary folder, then, `--runs` times in
turn, runs `bulwark evaluate --output json TREE` and `bulwark evaluate` of one small file
(the startup time) as subprocesses, and a fixed pure-Python loop (the machine's speed at
that moment). It reports the best of each: wall-clock time and objects per second, objects
per CPU-second of the child, the rate once started (wall time less the startup time), the
peak RSS, and the medians beside them. The machines this runs on change speed from one
minute to the next (the same loop was seen taking from 0.18 to 0.38 s), so runs are
interleaved and compared best to best, and the loop tells one machine from another.
Targets: 20,000 objects/s on one core, startup under 0.5 s.

The package's modules are compiled to bytecode first, as the Docker image and any wheel
install do: with PYTHONDONTWRITEBYTECODE set (some machines set it), every start would
otherwise compile them again, a fifth of the startup.

`--instructions` counts instead the instructions both commands execute, under valgrind
(`apt-get install -y valgrind`), with hashing seeded: a figure no neighbour changes, for
judging a change against its parent (about 40 s for 2,000 objects).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BULWARK = Path(sys.executable).with_name("bulwark")
TARGET_RATE, TARGET_STARTUP = 20_000, 0.5
# A fixed amount of pure-Python work, run in a child like the command: the machine's speed.
REFERENCE_LOOP = "total = 0\nfor number in range(2_000_000):\n    total += number"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: shop
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "9090"
spec:
  serviceAccountName: {app}
  containers:
  - name: {app}
    image: registry.example/{app}:1.{n}.0
    args: ["--port", "8080", "--log-level", "info"]
    ports:
    - {{containerPort: 8080, name: http}}
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef: {{fieldPath: metadata.name}}
    - {{name: FEATURE_FLAGS, value: "checkout,search"}}
    resources:
      requests: {{cpu: 100m, memory: 128Mi}}
{security}    readinessProbe:
      httpGet: {{path: /ready, port: http}}
      periodSeconds: 10
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
  labels:
    app.kubernetes.io/name: {app}
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: {app}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {app}
    spec:
{host}      containers:
      - name: {app}
        image: registry.example/{app}:2.{n}.1
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 250m
            memory: 256Mi
          limits:
            cpu: "1"
            memory: 512Mi
        volumeMounts:
        - {{name: config, mountPath: /etc/{app}}}
      volumes:
      - name: config
        configMap: {{name: {app}-config}}
"""

APPS = ("cart", "search", "checkout", "catalog", "payments", "auth", "mailer", "gateway")


def manifest(number: int, rng: random.Random) -> str:
    app = rng.choice(APPS)
    denied = rng.random() < 0.125
    if rng.random() < 0.5:
        security = "    securityContext: {privileged: true}\n" if denied else ""
        return POD.format(name=f"{app}-{number}", app=app, n=number % 50, security=security)
    host = "      hostNetwork: true\n" if denied else ""
    return DEPLOYMENT.format(name=f"{app}-{number}", app=app, n=number % 50, host=host)


def write_tree(root: Path, objects: int, seed: int = 6) -> int:
    """Write `objects` manifests into folders of multi-document files; return the count."""
    rng = random.Random(seed)
    number = 0
    while number < objects:
        folder = root / f"team-{number // 1000:02d}" / rng.choice(("base", "overlays"))
        folder.mkdir(parents=True, exist_ok=True)
        documents = min(rng.randint(1, 40), objects - number)
        text = "---\n".join(manifest(number + i, rng) for i in range(documents))
        (folder / f"app-{number:05d}.yaml").write_text(text)
        number += documents
    return number


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Wall-clock and child CPU seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def instructions(command: list[str]) -> int:
    """How many instructions `command` executes, counted by valgrind's callgrind."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", help="write the tree here and keep it")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind) instead"
    )
    args = parser.parse_args()

    import webhook

    compileall.compile_dir(Path(webhook.__file__).parent, quiet=1)
    root = Path(args.keep or tempfile.mkdtemp(prefix="bulwark-bench-"))
    try:
        count = write_tree(root, args.objects)
        command = [str(BULWARK), "evaluate", "--output", "json", str(root)]
        small = [str(BULWARK), "evaluate", str(next(root.rglob("*.yaml")))]
        reference = [sys.executable, "-c", REFERENCE_LOOP]
        if args.instructions:
            tree, start = instructions(command), instructions(small)
            print(f"tree: {count} objects; instructions, in millions (valgrind, PYTHONHASHSEED=0)")
            print(f"  evaluate --output json TREE: {tree / 1e6:,.1f}")
            print(f"  evaluate of one small file (the startup): {start / 1e6:,.1f}")
            print(f"  per object: {(tree - start) / count / 1e3:,.1f} thousand")
            return 0
        runs, startups, loops = [], [], []
        for _ in range(args.runs):
            runs.append(timed(command))
            startups.append(timed(small)[0])
            loops.append(timed(reference)[0])
        wall, cpu, done = min(runs, key=lambda run: run[0])
        if done.returncode not in (0, 1):
            print(done.stderr.decode(), file=sys.stderr)
            return 1
        judged = json.loads(done.stdout)["summary"]
        assert judged["objects"] == count, (judged, count)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    startup, loop = min(startups), min(loops)
    median_wall = statistics.median(run[0] for run in runs)
    rate, cpu_rate = count / wall, count / cpu
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child
    print(f"tree: {count} objects, {judged['denied']} denied, {os.cpu_count()} cores")
    print(
        f"evaluate --output json: {wall:.2f} s wall, {rate:,.0f} objects/s "
        f"(best of {args.runs}; median {median_wall:.2f} s, {count / median_wall:,.0f}/s)"
    )
    print(f"  child CPU: {cpu:.2f} s, {cpu_rate:,.0f} objects per CPU-second")
    print(f"  after start-up: {count / (wall - startup):,.0f} objects/s; peak RSS {peak:.0f} MiB")
    print(
        f"startup (one small file): {startup * 1000:.0f} ms "
        f"(best of {args.runs}; median {statistics.median(startups) * 1000:.0f} ms)"
    )
    print(
        f"machine: the reference loop took {loop * 1000:.0f} ms "
        f"(best of {args.runs}; median {statistics.median(loops) * 1000:.0f} ms)"
    )
    print(
        f"targets: {TARGET_RATE:,} objects/s {'met' if rate >= TARGET_RATE else 'NOT met'}, "
        f"startup < {TARGET_STARTUP} s {'met' if startup < TARGET_STARTUP else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
