"""Run every benchmark under tests/bench/ in turn and repeat their BENCH lines at the end."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    figures: list[str] = []
    failed: list[str] = []
    for script in sorted(HERE.glob("bench_*.py")):
        module = f"tests.bench.{script.stem}"
        print(f"== {module}", flush=True)
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", module, *sys.argv[1:]], stdout=subprocess.PIPE,
                                text=True, cwd=HERE.parent.parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("BENCH "):
                figures.append(line.rstrip())
        if proc.wait() != 0:
            failed.append(module)
        print(f"== {module} took {time.monotonic() - start:.0f}s", flush=True)
    print("\n".join(["", "== all figures", *figures]))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
