"""Hosted targets: wall time to bring T teams x S services up cold and warm, to reset a box.

Cold: no box and no game network yet (the base and challenge images are built before the
clock starts). Warm: `up` again with everything in place, the no-change convergence.
Prints `BENCH deploy_cold_up`, `deploy_warm_up`, `deploy_reset_box`, `deploy_down`,
`deploy_boxes_per_s`, and boxes per second for up, reset and down on one host
(`deploy_host_*_boxes_per_s`) and on a three-node Swarm of engines in containers
(`deploy_swarm_*_boxes_per_s`, 3 teams x S services; tests/swarm_helpers.py; the images
are copied to the nodes before the clock starts). Run: python -m tests.bench.bench_deploy
[--teams T] [--services S] [--no-swarm]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

from deploy import boxes, images, swarm_cluster
from deploy.engine import all_engines
from tests.bench.common import bench
from tests.conftest_docker import ROOT, hosted_game
from tests.swarm_helpers import Cluster

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
    parser.add_argument("--no-swarm", action="store_true", help="skip the three-node Swarm figures")
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
    bench("deploy_host_up_boxes_per_s", n / cold, "boxes/s")
    bench("deploy_host_reset_boxes_per_s", 1 / reset, "boxes/s")
    bench("deploy_host_down_boxes_per_s", n / down, "boxes/s")
    if not args.no_swarm:
        swarm_figures(args.services, quiet)


def swarm_figures(services: int, quiet: Console) -> None:
    """Up, reset and down on a three-node Swarm (3 teams: a service needs a node per team)."""
    cluster = Cluster(f"bench{os.getpid()}").start()
    try:
        config = hosted_game(f"benchs{os.getpid()}", teams=3, services=services, first_team=1,
                             subnet="10.235.0.0/16", mode="swarm", engines=cluster.engines)
        swarm_cluster.build_images(config, quiet)  # the copy to the nodes is not part of the figures
        n = 3 * services
        try:
            cold = timed(f"swarm up, {n} boxes", lambda: boxes.up(config, console=quiet))
            reset = timed("swarm reset one box", lambda: boxes.reset(config, config.teams[0].id, 1))
        finally:
            down = timed("swarm down", lambda: boxes.down(config, console=quiet))
    finally:
        cluster.close()
    bench("deploy_swarm_up_boxes_per_s", n / cold, "boxes/s")
    bench("deploy_swarm_reset_boxes_per_s", 1 / reset, "boxes/s")
    bench("deploy_swarm_down_boxes_per_s", n / down, "boxes/s")


if __name__ == "__main__":
    main()
