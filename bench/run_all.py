"""Run every benchmark script in bench/ and print one table of their figures.

make bench        (or .venv/bin/python bench/run_all.py)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "decision_pipeline.py",
    "submit_path.py",
    "orderfeed_ingest.py",
    "backtest_engine.py",
]


def main() -> int:
    failed = 0
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        result = subprocess.run([sys.executable, str(BENCH / script)], check=False)
        failed += result.returncode != 0
    print()
    print(f"{'benchmark':<22} {'figure':<34} value")
    for path in sorted((BENCH / "results").glob("*.json")):
        data = json.loads(path.read_text())
        for key, value in data["figures"].items():
            print(f"{data['benchmark']:<22} {key:<34} {value}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
