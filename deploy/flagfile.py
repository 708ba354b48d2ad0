"""AWD file mode: put the round's flag into a box's ``flag_file`` through the Docker API.

No SSH and no exec: one ``put_archive`` call with a one-file tarball, owned by root, mode
0444, so the service user (and the team, whose flag it is) can read it but not replace it.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time

from docker.errors import APIError, NotFound

from scoreboard.config import GameConfig
from scoreboard.types import ServiceID, TeamID

from .boxes import DeployError, box_name
from .engine import connect, engine_url

FLAG_MODE = 0o444


def flag_tarball(path: str, flag: str) -> bytes:
    """A tar archive holding one file named like `path`'s last part with `flag` + newline."""
    data = (flag + "\n").encode()
    info = tarfile.TarInfo(posixpath.basename(path))
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), FLAG_MODE, 0, 0, int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_flag(config: GameConfig, team_id: TeamID, service_id: ServiceID, flag: str) -> None:
    """Write `flag` into the service's flag_file in the team's box; DeployError if it cannot."""
    team, service = config.team(team_id), config.service(service_id)
    path = service.flag_file
    if not posixpath.isabs(path) or path.endswith("/"):
        raise DeployError(f"service {service.name!r}: flag_file {path!r} must be an absolute file path")
    url = engine_url(config, team)
    name = box_name(config, team, service)
    try:
        if config.deploy.mode == "swarm":  # the box's container is on whichever node Swarm chose
            from .swarm import write_flag as write_into_task

            ok = write_into_task(config, team_id, service_id, posixpath.dirname(path), flag_tarball(path, flag))
        else:
            ok = connect(url).api.put_archive(name, posixpath.dirname(path), flag_tarball(path, flag))
    except NotFound:
        raise DeployError(f"no box {name} on {url} (or no folder {posixpath.dirname(path)} in it)") from None
    except APIError as exc:
        raise DeployError(f"writing the flag into {name}:{path} failed: {exc.explanation or exc}") from None
    if not ok:
        raise DeployError(f"writing the flag into {name}:{path} failed")
