"""Docker engines: connect with a clear error, and spread teams over the configured engines.

`deploy.engines` lists engine URLs (``unix:///var/run/docker.sock``, ``tcp://10.0.0.5:2375``);
team number i in the game file's team list lives on ``engines[i % len(engines)]``.
"""

from __future__ import annotations

import functools

import docker
from docker.errors import DockerException

from scoreboard.config import GameConfig, Team


class EngineError(Exception):
    """A Docker engine that cannot be used; the message says which and what to do."""


@functools.cache
def connect(url: str) -> docker.DockerClient:
    """A client for the engine at `url`, checked with a ping (cached per URL)."""
    try:
        client = docker.DockerClient(base_url=url, timeout=120)
        client.ping()
    except DockerException as exc:
        hint = " (run deploy/ensure_docker.sh to start a local engine)" if url.startswith("unix:") else ""
        raise EngineError(f"Docker engine {url} does not answer: {exc}{hint}") from None
    client.adrange_url = url  # for messages: the SDK's base_url hides unix socket paths
    return client


def url_of(client: docker.DockerClient) -> str:
    """The URL a client was connected with, for messages."""
    return getattr(client, "adrange_url", client.api.base_url)


def engine_url(config: GameConfig, team: Team) -> str:
    """The URL of the engine that hosts this team's boxes."""
    index = next(i for i, t in enumerate(config.teams) if t.id == team.id)
    return config.deploy.engines[index % len(config.deploy.engines)]


def engine_for(config: GameConfig, team: Team) -> docker.DockerClient:
    """A client for the engine that hosts this team's boxes."""
    return connect(engine_url(config, team))


def all_engines(config: GameConfig) -> list[docker.DockerClient]:
    """Clients for every configured engine, in config order, without repeats."""
    return [connect(url) for url in dict.fromkeys(config.deploy.engines)]
