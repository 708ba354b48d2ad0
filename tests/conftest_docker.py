"""Docker fixtures: a running engine, the base image (built once, cached), hosted test games.

`docker_engine` runs deploy/ensure_docker.sh once per session and skips the docker tests,
with the script's own explanation, only when no engine can be started. `base_image` builds
adrange/base:bookworm (about a minute the first time; seconds from the cached root file
system after that). `hosted_game` is a plain function, also used by the deploy benchmark.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest

from deploy import images
from deploy.engine import connect
from scoreboard.config import GameConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent
TEST_CHALLENGE = Path(__file__).resolve().parent / "deploy_challenge"
LOCAL_ENGINE = "unix:///var/run/docker.sock"


def hosted_game(name: str, teams: int = 2, services: int = 1, first_team: int = 201,
                subnet: str = "10.213.0.0/16", challenge: Path = TEST_CHALLENGE, **deploy) -> GameConfig:
    """A hosted-mode game of `teams` x `services` copies of the test challenge.

    Team ids start at `first_team`, so boxes publish on 127.0.<id>.1 and sit at
    <subnet>.<id>.<service>; service s (from 1) uses port 7999 + s.
    """
    data = {
        "game": {"name": name, "secret": "deploy-tests-secret-0123456789"},
        "teams": [{"name": f"team{first_team + i}", "id": first_team + i} for i in range(teams)],
        "services": [
            {"name": f"pong{s + 1}" if services > 1 else "pong", "id": s + 1,
             "checker": {"protocol": "cli", "path": "checker.py"}, "ports": [8000 + s],
             "challenge": str(challenge), "flag_mode": "file", "flag_file": "/flag"}
            for s in range(services)
        ],
        "deploy": {"mode": "hosted", "engines": [LOCAL_ENGINE], "box_subnet": subnet, **deploy},
    }
    return parse_config(data, f"<{name}>", ROOT)


@pytest.fixture(scope="session")
def docker_engine() -> docker.DockerClient:
    """A client for the local engine, started by deploy/ensure_docker.sh when needed."""
    result = subprocess.run([str(ROOT / "deploy" / "ensure_docker.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"no Docker engine could be started: {(result.stdout + result.stderr).strip()[-400:]}")
    return connect(LOCAL_ENGINE)


@pytest.fixture(scope="session")
def base_image(docker_engine: docker.DockerClient) -> str:
    """adrange/base:bookworm on the local engine, built once (debootstrap) and cached."""
    images.build_base([docker_engine])
    return images.BASE_IMAGE


@pytest.fixture(scope="session")
def session_tag() -> str:
    """A short tag unique to this test session, for game names."""
    return f"t{os.getpid()}"


@pytest.fixture(scope="session")
def make_hosted_game():
    """The `hosted_game` factory, for tests that need their own game."""
    return hosted_game
