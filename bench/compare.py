"""Bulwark's server before and after a change: CPU per review and reviews/s, side by side.

    .venv/bin/python bench/compare.py --before a5d1ed9 [--rounds 2] [--seconds 5] [--whole]

"Before" is a copy of today's webhook/ with the files that the hot-path work changed
(app, review, server, logs, metrics) taken from git revision REV, or with `--whole` all of
webhook/ at REV (when the change also reaches other modules, such as the command line that
configures the server); "after" is the working tree. Each is started in turn as `bulwark
serve` pinned to core 0, warmed up, then loaded by wrk on core 1 with each recorded review
at /validate; the best of `--rounds` is kept.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run import (
    CERTS,
    LOAD_CPU,
    REVIEWS,
    ROOT,
    VENV_BIN,
    Server,
    cpu_seconds,
    ensure_inputs,
    ensure_wrk,
    free_port,
    run_json,
    wrk_command,
)

HOT_PATH = ("app", "review", "server", "logs", "metrics")


def before_tree(revision: str, into: Path, *, whole: bool = False) -> Path:
    if whole:
        archive = subprocess.run(
            ["git", "archive", revision, "webhook"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        return into
    shutil.copytree(
        ROOT / "webhook", into / "webhook", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in HOT_PATH:
        source = subprocess.run(
            ["git", "show", f"{revision}:webhook/{name}.py"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout  # fmt: skip
        (into / "webhook" / f"{name}.py").write_bytes(source)
    return into


def measure(wrk: str, command: list[str], review: str, seconds: int) -> tuple[float, float]:
    """(CPU µs per review, reviews/s) of one server start."""
    server = Server("compare", command, int(command[command.index("--port") + 1]), "/validate")
    server.start()
    try:
        run_json(wrk_command(wrk, server.url(), review, 2, 1, 16), LOAD_CPU)
        before = cpu_seconds(server.pid)
        result = run_json(wrk_command(wrk, server.url(), review, seconds, 1, 16), LOAD_CPU)
        spent = cpu_seconds(server.pid) - before
        return spent / result["requests"] * 1e6, result["requests"] / seconds
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, metavar="REV", help="git revision")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--whole", action="store_true", help="all of webhook/ at REV")
    args = parser.parse_args()
    wrk = ensure_wrk()
    ensure_inputs()
    with tempfile.TemporaryDirectory() as folder:
        old = before_tree(args.before, Path(folder), whole=args.whole)
        port = str(free_port())
        serve = ["-m", "webhook", "serve", "--host", "127.0.0.1", "--port", port,
                 "--cert-dir", str(CERTS)]  # fmt: skip
        # `-m` puts the working folder first on sys.path: each side runs from its own tree.
        variants = {
            f"before ({args.before})": ["env", "-C", str(old), str(VENV_BIN / "python"), *serve],
            "after (working tree)": [str(VENV_BIN / "python"), *serve],
        }
        print("| review | " + " | ".join(variants) + " | change |")
        print("| --- | ---: | ---: | ---: |")
        for review in REVIEWS:
            best = {}
            for _ in range(args.rounds):
                for name, command in variants.items():
                    cpu, rate = measure(wrk, command, review, args.seconds)
                    if name not in best or cpu < best[name][0]:
                        best[name] = (cpu, rate)
            (cpu0, rate0), (cpu1, rate1) = best.values()
            cells = [f"{cpu:.0f} µs, {rate:,.0f}/s" for cpu, rate in best.values()]
            print(f"| {review} | {cells[0]} | {cells[1]} | CPU {cpu1 / cpu0 - 1:+.0%}, "
                  f"reviews/s {rate1 / rate0 - 1:+.0%} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
