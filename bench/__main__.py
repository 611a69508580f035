"""`make bench`: run every benchmark in bench/ and write its figures to var/bench/.

A benchmark is a module `bench/<name>.py` with `main() -> dict` that prints
its figures as it goes and returns them. `python -m bench NAME...` runs some.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
import traceback
import warnings
from pathlib import Path

import eventlet

eventlet.monkey_patch()

warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("MUNIPORTAL_VAR", ROOT / "var")) / "bench"


def main(argv: list[str]) -> int:
    import bench

    names = argv or sorted(
        m.name
        for m in pkgutil.iter_modules(bench.__path__)
        if not m.name.startswith("_") and m.name != "common"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        print(f"== bench {name}", flush=True)
        started = time.time()
        try:
            figures = importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        result = {
            "bench": name,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
            "figures": figures,
        }
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
        print(f"== {name}: {result['seconds']}s -> {OUT / (name + '.json')}", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
