"""Where `bulwark evaluate` spends its time on one warm object, stage by stage, in-process.

    .venv/bin/python bench/evaluate_stages.py [--objects 10000] [--runs 9]

Writes the tree `bench_evaluate.py` writes, reads it once inside rapidyaml's reader, then
times each stage over all of its objects (best of `--runs`, in µs an object): reading
(files to `Document`s), building the admission request, `validate`, `mutate`, and writing
the JSON report. The stages run warm and one after another, so they add up to a little
less than a whole run; the point is their shares.
"""

from __future__ import annotations

import argparse
import gc
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_evaluate import write_tree

from webhook import report
from webhook.admission import mutate, validate
from webhook.config import load_settings
from webhook.evaluate import admission_request, judge
from webhook.manifests_io import Document, read_paths
from webhook.verdict import NoRoles
from webhook.yaml_native import native_reader


def best(runs: int, stage: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `runs` calls of `stage`, in seconds, and its last result."""
    fastest, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = stage()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bulwark-stages-"))
    try:
        count = write_tree(root, args.objects)
        settings = load_settings(None)
        gc.disable()  # as `bulwark evaluate` runs
        with native_reader():
            seconds, items = best(args.runs, lambda: list(read_paths([str(root)])))
        documents = [item for item in items if isinstance(item, Document)]
        assert len(documents) == count
        stages = {"read": seconds}

        def requests() -> list[Any]:
            return [
                admission_request(d.body, namespace="default", operation="CREATE", uid=d.source)
                for d in documents
            ]

        stages["request"], built = best(args.runs, requests)
        roles = NoRoles()
        stages["validate"], _ = best(
            args.runs, lambda: [validate(r, settings, roles=roles) for r in built]
        )
        stages["mutate"], _ = best(args.runs, lambda: [mutate(r, settings) for r in built])
        _, results = best(1, lambda: judge(documents, settings))
        stages["output"], _ = best(
            args.runs, lambda: report.write("json", results, [], io.StringIO())
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for name, seconds in stages.items():
        print(f"{name:>9}: {seconds / count * 1e6:5.1f} µs an object")
    print(f"{'sum':>9}: {sum(stages.values()) / count * 1e6:5.1f} µs an object")


if __name__ == "__main__":
    main()
