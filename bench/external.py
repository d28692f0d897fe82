"""The other benchmark modules (collector, Redis), run in a subprocess of their own.

Each exposes ``run(quick: bool) -> dict``. They are optional: a missing module, a module
without ``run`` or a missing ``redis-server`` is reported as skipped, never as a failure.

    python -m bench.external NAME [--quick]     prints "RESULT {json}"
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1200.0


def run_external(name: str, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """``bench/<name>_bench.py``'s figures, or why there are none."""
    if not (ROOT / "bench" / f"{name}_bench.py").exists():
        return {"skipped": f"bench/{name}_bench.py is not there"}
    if name in ("redis", "relay") and shutil.which("redis-server") is None:
        return {"skipped": "redis-server is not installed"}
    command = [sys.executable, "-m", "bench.external", name] + (["--quick"] if quick else [])
    try:
        proc = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT:.0f} s"}
    lines = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {"error": f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


def main() -> None:
    name, quick = sys.argv[1], "--quick" in sys.argv[2:]
    module = importlib.import_module(f"bench.{name}_bench")
    run = getattr(module, "run", None)
    if run is None:
        result: dict[str, Any] = {"skipped": f"no run(quick) in bench/{name}_bench.py"}
    else:
        result = run(quick=quick)
    print("RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
