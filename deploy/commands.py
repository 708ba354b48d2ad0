"""The `adrange images ...` and `adrange deploy ...` command groups.

Wire them into the main CLI with ``register(main)`` (deploy/cli.py). Every failure becomes
a one-line ``error: ...`` and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import click
from rich.console import Console
from rich.table import Table

from scoreboard.config import ConfigError, load_config

from . import boxes, images, swarm_cluster
from .engine import EngineError, all_engines, connect
from .network import NetworkError

console = Console(stderr=True)
FAILURES = (EngineError, images.ImageError, boxes.DeployError, NetworkError, ConfigError,
            swarm_cluster.SwarmError)
config_option = click.option("-c", "--config", "config_path", default="game.yml", show_default=True,
                             envvar="ADRANGE_CONFIG", help="game file")


def friendly(func: Callable) -> Callable:
    """Turn the deploy errors into `error: message` and exit status 1."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FAILURES as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def _summary(counts: Counter) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "nothing to do"


# -- images ------------------------------------------------------------------------
@click.group("images")
def images_group() -> None:
    """Build, save and load the adrange images (offline: no registry needed)."""


@images_group.command("base")
@click.option("--force", is_flag=True, help="rebuild even if the image exists (runs debootstrap again)")
@click.option("--mirror", default=None, help="Debian mirror (default: the host's apt source)")
@click.option("--engine", "engine_urls", multiple=True, help="engine URL (default: the game's engines, or local)")
@click.option("-c", "--config", "config_path", default=None, envvar="ADRANGE_CONFIG", help="game file (optional)")
@friendly
def images_base(force: bool, mirror: str | None, engine_urls: tuple[str, ...], config_path: str | None) -> None:
    """Build adrange/base:bookworm with debootstrap + docker import."""
    image = images.BASE_IMAGE
    if config_path:
        config = load_config(config_path)
        clients = all_engines(config)
        image = config.deploy.base_image
    else:
        clients = [connect(url) for url in engine_urls or ["unix:///var/run/docker.sock"]]
    for line in images.build_base(clients, image, force=force, mirror=mirror, console=console):
        click.echo(line)


@images_group.command("build")
@config_option
@click.option("--force", is_flag=True, help="rebuild even when the content hash is unchanged")
@friendly
def images_build(config_path: str, force: bool) -> None:
    """Build every service's challenge image (only those whose folder changed)."""
    config = load_config(config_path)
    if config.deploy.mode == "swarm":  # built once on deploy.swarm.build_engine, copied to every node
        built = swarm_cluster.build_images(config, console, force=force)
        click.echo(f"{len(built)} challenge image(s) on every swarm node")
        return
    images.build_base(all_engines(config), config.deploy.base_image, console=console)
    click.echo(_summary(Counter(images.build_challenges(config, force=force, console=console))))


@images_group.command("save")
@click.argument("file")
@click.option("--engine", "engine_url", default="unix:///var/run/docker.sock", show_default=True)
@friendly
def images_save(file: str, engine_url: str) -> None:
    """Write every adrange/* image into FILE (one tarball)."""
    with console.status(f"saving adrange images to {file}"):
        tags = images.save_images(connect(engine_url), file)
    click.echo(f"saved {len(tags)} images to {file}")


@images_group.command("load")
@click.argument("file")
@click.option("--engine", "engine_urls", multiple=True, help="engine URL (repeatable; default local)")
@friendly
def images_load(file: str, engine_urls: tuple[str, ...]) -> None:
    """Load a tarball from `images save` into the engine(s)."""
    clients = [connect(url) for url in engine_urls or ["unix:///var/run/docker.sock"]]
    with console.status(f"loading {file}"):
        count = images.load_images(clients, file)
    click.echo(f"loaded {file} into {count} engine(s)")


# -- deploy ------------------------------------------------------------------------
@click.group("deploy")
def deploy_group() -> None:
    """Run the teams' target boxes (deploy.mode hosted, or swarm: one Swarm service per box)."""


@deploy_group.command("up")
@config_option
@friendly
def deploy_up(config_path: str) -> None:
    """Build what changed and converge the boxes to the game file."""
    config = load_config(config_path)
    if config.deploy.mode == "external":
        click.echo("deploy.mode is external: teams bring their own vulnbox; nothing to deploy")
        return
    click.echo(_summary(boxes.up(config, console=console)))


@deploy_group.command("down")
@config_option
@friendly
def deploy_down(config_path: str) -> None:
    """Remove every box and network of the game."""
    click.echo(_summary(boxes.down(load_config(config_path), console=console)))


@deploy_group.command("status")
@config_option
@friendly
def deploy_status(config_path: str) -> None:
    """Show each box: state, address, published ports, health."""
    rows = boxes.status(load_config(config_path))
    table = Table("team", "service", "state", "box address", "published", "health", title="game boxes")
    colors = {"running": "green", "ok": "green", "down": "red", "missing": "red", "exited": "red"}
    for row in rows:
        state = row.state.split()[0]  # swarm mode adds "on <node>"
        table.add_row(row.team, row.service, f"[{colors.get(state, 'yellow')}]{row.state}",
                      row.address, row.published, f"[{colors.get(row.health, 'white')}]{row.health}")
    Console().print(table)


@deploy_group.command("restart")
@config_option
@click.argument("team")
@click.argument("service")
@friendly
def deploy_restart(config_path: str, team: str, service: str) -> None:
    """Restart one box (TEAM and SERVICE: id or name); its files are kept."""
    config = load_config(config_path)
    boxes.restart(config, *boxes.resolve_ids(config, team, service))
    click.echo(f"restarted {team}/{service}")


@deploy_group.command("reset")
@config_option
@click.argument("team")
@click.argument("service")
@friendly
def deploy_reset(config_path: str, team: str, service: str) -> None:
    """Recreate one box from its image (the team's changes are lost)."""
    config = load_config(config_path)
    boxes.reset(config, *boxes.resolve_ids(config, team, service))
    click.echo(f"reset {team}/{service}")


def register(main: click.Group) -> None:
    """Add the `images` and `deploy` groups to the main CLI."""
    main.add_command(images_group)
    main.add_command(deploy_group)
