"""`train fraud_detector` time, split into training set, CV/tuning, fit and evaluation.

A copy of the example project with generated data (default 50,000 payments,
as in `make demo`), trained ``--runs`` times in one process after a warm-up
(imports, engine start); prints the median of each step as reported by
``TrainResult.timings`` plus the whole ``Project.train`` call (which also
renders the report and writes the version).

Usage: python benchmarks/bench_train.py [--rows 50000] [--runs 3] [--model fraud_detector]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bigml_fs import Project
from bigml_fs.example.generate import generate

REPO = Path(__file__).resolve().parents[1]
STEPS = ("training_set", "cv_tuning", "fit", "evaluation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="fraud_detector")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for part in ("project.yaml", "sql", "features", "models"):
            (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, root / part)
        generate(root / "data", rows=args.rows)
        rows: list[dict[str, float]] = []
        with Project.load(root) as project:
            project.train(args.model)  # warm-up: imports, engine, first compile
            for _ in range(args.runs):
                started, cpu = time.perf_counter(), time.process_time()
                result = project.train(args.model)
                rows.append(
                    {**result.timings, "total": time.perf_counter() - started, "cpu": time.process_time() - cpu}
                )
    print(
        f"train {args.model}: {args.rows:,} payments, median of {args.runs} run(s), "
        f"BIGML_THREADS={os.environ.get('BIGML_THREADS', '1')}, {platform.machine()} x{os.cpu_count()}"
    )
    for key in (*STEPS, "total"):
        print(f"  {key:<13} {statistics.median(r[key] for r in rows):7.2f} s")
    print(f"  report+write  {statistics.median(r['total'] - sum(r[k] for k in STEPS) for r in rows):7.2f} s")
    print(
        f"  CPU time      {statistics.median(r['cpu'] for r in rows):7.2f} s"
        " (wall above CPU means the machine was busy)"
    )


if __name__ == "__main__":
    main()
