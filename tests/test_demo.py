"""`adrange demo` (what `make demo` runs) as a whole: a live game, then a clean Ctrl-C."""

from __future__ import annotations

import re
import signal
import time

import pytest
import requests

from deploy.engine import connect
from deploy.redis_server import free_port
from deploy.supervisor import ROOT
from scoreboard.config import load_config
from scoreboard.store import GameStore
from scoreboard.types import Status
from tests.processes import Process, wait_port

pytestmark = pytest.mark.docker
NAME = "demotest"


def bot_accepted(log: str, protocol: str) -> int:
    return sum(int(n) for n in re.findall(rf"(\d+) accepted via {protocol}", log))


def test_demo_runs_a_live_game_and_ctrl_c_leaves_nothing_behind(base_image, tmp_path):
    web_port, redis_port, submit_port = free_port(), free_port(), 31437
    demo = Process(["demo", "--name", NAME, "--round-seconds", "8", "--web-port", str(web_port),
                    "--redis-port", str(redis_port), "--submit-port", str(submit_port),
                    "--subnet", "10.215.0.0/16"], tmp_path, "demo").start()
    logs = ROOT / ".run" / NAME / "logs"
    try:
        wait_port("127.0.0.1", web_port, timeout=400, proc=demo.proc)
        deadline = time.monotonic() + 150
        while True:
            text = "".join(f.read_text(errors="replace") for f in sorted(logs.glob("bot-*.log")))
            round_ = requests.get(f"http://127.0.0.1:{web_port}/api/round", timeout=5).json()["round"]
            done = round_ >= 7 and all(bot_accepted(text, p) for p in ("http", "faust", "forcad"))
            if done or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert done, f"round {round_}; bots:\n{text[-3000:]}"
        assert "patched its" in text and "took shop down" in text and "brought shop back" in text
        config = load_config(ROOT / ".run" / NAME / "game.yml")
        store = GameStore(config)
        shop = next(s.id for s in config.services if s.name == "shop")
        statuses = [e for e in store.events("check") if e["team"] == "2" and e["service"] == str(shop)]
        assert any(int(e["status"]) == Status.DOWN for e in statuses), "the downed service was never DOWN"
        board = requests.get(f"http://127.0.0.1:{web_port}/api/scoreboard", timeout=5).json()
        assert all(row["total"] > 0 for row in board["ranking"])
        assert {cell["status"] for cell in board["matrix"].values()} & {"OK", "RECOVERING"}
    finally:
        demo.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        demo.proc.wait(120)
    engine = connect("unix:///var/run/docker.sock")
    assert engine.containers.list(all=True, filters={"label": f"adrange.game={NAME}"}) == []
    assert not [n for n in engine.networks.list() if NAME in n.name]
    with pytest.raises(OSError):
        wait_port("127.0.0.1", web_port, timeout=1)
