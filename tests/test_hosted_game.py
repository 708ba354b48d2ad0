"""Every sample challenge as real containers: checked OK, exploited, patched, reset, torn down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from checker.runner import run_action
from deploy import boxes, images
from deploy.bots import load_exploit
from deploy.demo import challenge_services
from deploy.engine import connect
from deploy.flagfile import write_flag
from scoreboard import access
from scoreboard.config import GameConfig, Service, parse_config
from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore
from scoreboard.submission.sync import Submissions
from scoreboard.types import Status
from tests.game_helpers import start_at_round
from tests.ssh_helpers import scp, ssh

pytestmark = pytest.mark.docker
ATTACKER, VICTIM = 211, 212


@pytest.fixture(scope="module")
def hosted(docker_engine, base_image, session_tag, redis_server):
    data = {
        "game": {"name": f"hosted{session_tag}", "secret": "hosted-game-secret-0123456789", "flag_lifetime": 5},
        "teams": [{"name": "attackers", "id": ATTACKER}, {"name": "defenders", "id": VICTIM}],
        "services": challenge_services(60),
        "deploy": {"mode": "hosted", "box_subnet": "10.214.0.0/16"},
        "redis_url": redis_server.url,
    }
    config = parse_config(data)
    images.build_challenges(config)
    boxes.up(config)
    store = GameStore(config)
    store.init()
    start_at_round(store, 3)
    try:
        yield config, store
    finally:
        boxes.down(config)
        left = connect(config.deploy.engines[0]).containers.list(all=True, filters={"label": "adrange.game="
                                                                                   + config.game.name})
        assert left == [], "deploy down left containers behind"


def plant(config: GameConfig, service: Service, round_: int) -> tuple[list[str], list[str]]:
    """Place one flag per vuln in the victim's box like the round engine; return (flags, attack data)."""
    codec = FlagCodec(config.game.secret)
    host = config.team(VICTIM).address
    flags, public = [], []
    for vuln in range(1, len(service.vulns) + 1):
        flag = codec.generate(round_, VICTIM, service.id, vuln - 1)
        if service.flag_mode == "file":
            write_flag(config, VICTIM, service.id, flag)
        else:
            result = run_action(service.checker, None, "put", host, "", flag, vuln)
            assert result.status == Status.OK, (service.name, result.public, result.private)
            got = run_action(service.checker, None, "get", host, result.flag_id or "", flag, vuln)
            assert got.status == Status.OK, (service.name, got.public, got.private)
            public.append(result.public_flag_id or result.flag_id or "")
        flags.append(flag)
    return flags, public


def steal(config: GameConfig, service: Service, attack_data: list[str]) -> set[str]:
    module = load_exploit(config, service)
    assert module is not None
    try:
        return set(module.exploit(config.team(VICTIM).address, attack_data))
    except Exception:  # a patched service may just refuse: nothing stolen
        return set()


def wait_checked_ok(service: Service, host: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = run_action(service.checker, None, "check", host)
        if result.status == Status.OK:
            return
        assert time.monotonic() < deadline, (service.name, result.status, result.public, result.private)
        time.sleep(1)


def patch_as_a_player(config: GameConfig, service: Service, work: Path) -> None:
    """Do what the challenge's PATCH.md says, over SSH with the team's login."""
    folder = config.resolve(service.challenge or "") / "patches"
    text = (folder / "PATCH.md").read_text()
    command = next(line.strip() for line in text.splitlines() if line.strip().startswith("cd /srv/"))
    login = next(a for a in access.team_access(config, VICTIM) if a["service"] == service.name)
    copied = scp(login["host"], login["port"], login["password"], sorted(folder.glob("*.patch")), work)
    assert copied.returncode == 0, copied.stderr
    done = ssh(login["host"], login["port"], login["password"], command, work)
    assert done.returncode == 0 and "restart requested" in done.stdout, (command, done.stdout, done.stderr)


@pytest.mark.parametrize("name", ["notes", "vault", "shop", "pinger"])
def test_challenge_box_is_checked_exploited_patched_and_reset(hosted, name, tmp_path):
    """Patched the way PATCH.md tells a player: scp the patches in, then its command line
    over SSH as the team user (patch, restart-service)."""
    config, store = hosted
    service = next(s for s in config.services if s.name == name)
    host = config.team(VICTIM).address
    wait_checked_ok(service, host)

    flags, attack_data = plant(config, service, 3)
    stolen = steal(config, service, attack_data)
    assert set(flags) <= stolen, f"{name}: exploit missed {set(flags) - stolen}"
    results = Submissions(store).submit(ATTACKER, sorted(set(flags)))
    assert all(r.accepted for r in results), [r.text for r in results]

    patch_as_a_player(config, service, tmp_path)
    time.sleep(2)
    wait_checked_ok(service, host)
    flags, attack_data = plant(config, service, 4)  # the checker still works on the patched box
    assert not set(flags) & steal(config, service, attack_data), f"{name}: patched box still leaks"

    boxes.reset(config, VICTIM, service.id)
    wait_checked_ok(service, host)
    flags, attack_data = plant(config, service, 5)
    assert set(flags) <= steal(config, service, attack_data), f"{name}: reset box is not vulnerable again"
