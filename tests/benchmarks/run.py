"""`make bench`: engine, sweep, queued sweep, walk-forward, store, API, event, result benchmarks.

    python tests/benchmarks/run.py [--quick] [--json var/bench.json]

Prints each benchmark's own table, and writes one JSON document with both.
Not part of `make test`: timings on a shared machine belong here, never in assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import (  # noqa: E402
    bench_api,
    bench_engine,
    bench_events,
    bench_queue_sweep,
    bench_results,
    bench_store,
    bench_sweep,
    bench_walkforward,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter loads")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engine_json = Path(tmp) / "engine.json"
        print("== engine ==", flush=True)
        engine_args = ["--json", str(engine_json), "--data-dir", str(ROOT / "var" / "bench-data")]
        status = bench_engine.main(engine_args + (["--quick"] if args.quick else []))
        engine = json.loads(engine_json.read_text())
        print("\n== sweeps ==", flush=True)
        sweep_json = Path(tmp) / "sweep.json"
        sweep_args = ["--json", str(sweep_json), "--data-dir", str(ROOT / "var" / "bench-data")]
        bench_sweep.main(sweep_args + (["--quick"] if args.quick else []))
        sweeps = json.loads(sweep_json.read_text())
        print("\n== bar store: 5-year dataset, partitions vs single file ==", flush=True)
        store_json = Path(tmp) / "store.json"
        store_status = bench_store.main(
            ["--json", str(store_json)] + (["--quick"] if args.quick else [])
        )
        store = json.loads(store_json.read_text())
        print("\n== walk-forward ==", flush=True)
        walk_json = Path(tmp) / "walkforward.json"
        walk_args = ["--json", str(walk_json), "--data-dir", str(ROOT / "var" / "bench-data")]
        bench_walkforward.main(walk_args + (["--quick"] if args.quick else []))
        walk = json.loads(walk_json.read_text())
        print("\n== the reference sweep through the queue ==", flush=True)
        queue_args = ["--data-dir", str(ROOT / "var" / "bench-data")]
        queued_sweep = bench_queue_sweep.main(queue_args + (["--quick"] if args.quick else []))
    print("\n== API and queue ==", flush=True)
    api = bench_api.main(["--seconds", "5" if args.quick else "15"])
    print("\n== event streams ==", flush=True)
    events = bench_events.main(["--idle-seconds", "10" if args.quick else "30"])
    print("\n== large results ==", flush=True)
    results = bench_results.main([])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "engine": engine,
        "sweeps": sweeps,
        "walkforward": walk,
        "store": store,
        "queued_sweep": queued_sweep,
        "api": api,
        "events": events,
        "results": results,
    }
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {args.json}")
    return status or store_status


if __name__ == "__main__":
    raise SystemExit(main())
