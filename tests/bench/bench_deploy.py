"""Hosted targets: wall time to bring T teams x S services up cold and warm, to reset a box.

Cold: no box and no game network yet (the base and challenge images are built before the
clock starts). Warm: `up` again with everything in place, the no-change convergence.
Prints `BENCH deploy_cold_up`, `deploy_warm_up`, `deploy_reset_box`, `deploy_down`,
`deploy_boxes_per_s`. Run: python -m tests.bench.bench_deploy [--teams T] [--services S]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from deploy import boxes, images
from deploy.engine import all_engines
from tests.bench.common import bench
from tests.conftest_docker import ROOT, hosted_game

console = Console(stderr=True)


def timed(what: str, func: Callable[[], Any]) -> float:
    """Seconds `func` takes, reported on the console."""
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    console.print(f"{what}: {seconds:.2f} s {result if result else ''}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--services", type=int, default=2, help="at most 8 (the test challenge's ports)")
    args = parser.parse_args()
    subprocess.run([str(ROOT / "deploy" / "ensure_docker.sh")], check=True, stdout=subprocess.DEVNULL)
    config = hosted_game(f"bench{os.getpid()}", teams=args.teams, services=args.services, first_team=231,
                         subnet="10.216.0.0/16")
    quiet = Console(quiet=True)
    images.build_base(all_engines(config), console=console)
    images.build_challenges(config, console=quiet)
    n = args.teams * args.services
    try:
        cold = timed(f"cold up, {n} boxes", lambda: boxes.up(config, console=quiet))
        warm = timed("warm up", lambda: boxes.up(config, console=quiet))
        reset = timed("reset one box", lambda: boxes.reset(config, config.teams[0].id, 1))
    finally:
        down = timed("down", lambda: boxes.down(config, console=quiet))
    bench("deploy_cold_up", cold, "s")
    bench("deploy_warm_up", warm, "s")
    bench("deploy_reset_box", reset, "s")
    bench("deploy_down", down, "s")
    bench("deploy_boxes_per_s", n / cold, "boxes/s")


if __name__ == "__main__":
    main()
