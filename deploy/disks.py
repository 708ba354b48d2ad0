"""Box disks: each box's /srv is its own size-capped ext4 file system (``deploy.disk``).

overlay2 on ext4 (this range's usual engine host) cannot cap a container's layer
(``--storage-opt size`` needs xfs with project quotas), so the box's code and data live on
a disk of their own: a sparse image file on the engine's host,
``/var/lib/adrange/disks/<game>/<box>/<id>.img``, attached to a loop device and mounted
by Docker as the box's ``/srv`` volume (``<box>-disk``, local driver, type ext4). Docker
copies the image's ``/srv`` into it when the box is created. Writing past the size fails
with ENOSPC; the host file never grows past it. 5% of the blocks are reserved for the
team user, so a service that filled its data dir does not stop the team from patching.

The image files and loop devices are handled by a short-lived helper container from the
base image (SYS_ADMIN and the loop devices only), so remote engines work too. The disk's
id hashes the image and the size: a new challenge image or size gives a fresh disk, any
other change of the box keeps it. After a host reboot the loop devices are gone and the
boxes do not start until ``adrange deploy up`` attaches the same files again.
"""

from __future__ import annotations

import hashlib

import docker
from docker.errors import APIError, ContainerError, NotFound

from scoreboard.config import size_bytes

from .engine import url_of

DISK_DIR = "/var/lib/adrange/disks"
TEAM_UID = 1001  # the team user of deploy/base/finish.sh: owns the reserved blocks
LABEL_GAME = "adrange.game"
LABEL_ROLE = "adrange.role"
LABEL_DEVICE = "adrange.device"
LABEL_BOX = "adrange.box"
LABEL_DISK = "adrange.disk"

_COMMON = r"""
set -eu
dir=$1; shift
mkdir -p "$dir"
exec 9>"${dir%/*}/.lock"
flock 9
detach() { losetup -j "$1" | cut -d: -f1 | while read -r dev; do losetup -d "$dev" || true; done; }
"""
# Arguments: game dir, then (box, id, bytes) triples; prints "box device" per box.
_ATTACH = _COMMON + r"""
while [ "$#" -ge 3 ]; do
  box=$1 id=$2 size=$3; shift 3
  file="$dir/$box/$id.img"
  mkdir -p "$dir/$box"
  for old in "$dir/$box"/*.img; do
    [ -e "$old" ] && [ "$old" != "$file" ] || continue
    detach "$old"; rm -f "$old"
  done
  if [ ! -f "$file" ]; then
    rm -f "$file.new"
    truncate -s "$size" "$file.new"
    mkfs.ext4 -q -F -m 5 -E lazy_itable_init=1,lazy_journal_init=1 "$file.new"
    tune2fs -u TEAM_UID "$file.new" >/dev/null
    debugfs -w -R "rmdir lost+found" "$file.new" 2>/dev/null  # empty, so Docker copies /srv in
    if debugfs -R "ls /" "$file.new" 2>/dev/null | grep -q lost+found; then
      echo "cannot empty the new disk $file" >&2; exit 1
    fi
    mv "$file.new" "$file"
  fi
  dev=$(losetup -j "$file" | cut -d: -f1 | head -n 1)
  [ -n "$dev" ] || dev=$(losetup -f --show "$file")
  echo "$box $dev"
done
""".replace("TEAM_UID", str(TEAM_UID))
# Arguments: game dir, then box names (none: every disk of the game).
_RELEASE = _COMMON + r"""
[ "$#" -gt 0 ] || set -- $(ls "$dir" || true)
for box in "$@"; do
  for file in "$dir/$box"/*.img "$dir/$box"/*.img.new; do
    [ -e "$file" ] && detach "$file"
  done
  rm -rf "${dir:?}/$box"
done
rmdir "$dir" 2>/dev/null || true
"""


class DiskError(Exception):
    """A box disk that cannot be made, attached or released; the message says why."""


def disk_id(image_id: str, size: str) -> str:
    """The disk's identity: a new image or size means a fresh disk."""
    return hashlib.sha256(f"{image_id}:{size_bytes(size)}".encode()).hexdigest()[:12]


def volume_name(box: str) -> str:
    """The Docker volume that mounts a box's disk."""
    return f"{box}-disk"


def game_dir(game: str) -> str:
    """The folder of a game's disk images on each engine's host."""
    return f"{DISK_DIR}/{game}"


def attach(client: docker.DockerClient, base_image: str, game: str,
           disks: list[tuple[str, str, str]]) -> dict[str, str]:
    """Make (when missing) and attach the disks ``(box, id, size)``; return each box's loop device."""
    if not disks:
        return {}
    args = [game_dir(game)] + [arg for box, id_, size in disks for arg in (box, id_, str(size_bytes(size)))]
    out = _helper(client, base_image, _ATTACH, args)
    devices = dict(line.split() for line in out.splitlines() if line.strip())
    missing = {box for box, _, _ in disks} - devices.keys()
    if missing:
        raise DiskError(f"no loop device for {sorted(missing)} on {url_of(client)}:\n{out}")
    return devices


def release(client: docker.DockerClient, base_image: str, game: str, boxes: list[str] | None = None) -> None:
    """Detach and delete the disks of these boxes (None: every disk of the game)."""
    if boxes == []:
        return
    _helper(client, base_image, _RELEASE, [game_dir(game), *(boxes or [])])


def ensure_volume(client: docker.DockerClient, box: str, device: str, disk: str, game: str) -> str:
    """The box's ``/srv`` volume for disk `disk` on `device`, made again if it named another."""
    name = volume_name(box)
    try:
        volume = client.volumes.get(name)
        labels = volume.attrs.get("Labels") or {}
        if (volume.attrs.get("Options") or {}).get("device") == device and labels.get(LABEL_DISK) == disk:
            return name
        volume.remove()
    except NotFound:
        pass
    except APIError as exc:
        raise DiskError(f"volume {name} on {url_of(client)}: {exc.explanation or exc}") from None
    client.volumes.create(name, driver="local", driver_opts={"type": "ext4", "device": device, "o": "nodev,nosuid"},
                          labels={LABEL_GAME: game, LABEL_ROLE: "disk", LABEL_BOX: box, LABEL_DISK: disk,
                                  LABEL_DEVICE: device})
    return name


def game_volumes(client: docker.DockerClient, game: str) -> dict:
    """The game's disk volumes on this engine, by box name."""
    volumes = client.volumes.list(filters={"label": [f"{LABEL_GAME}={game}", f"{LABEL_ROLE}=disk"]})
    return {(v.attrs.get("Labels") or {}).get(LABEL_BOX, v.name): v for v in volumes}


def remove_volume(client: docker.DockerClient, box: str) -> None:
    """Drop the box's volume (its disk image stays until `release`)."""
    try:
        client.volumes.get(volume_name(box)).remove(force=True)
    except NotFound:
        pass


def _helper(client: docker.DockerClient, base_image: str, script: str, args: list[str]) -> str:
    try:
        out = client.containers.run(
            base_image, ["/bin/sh", "-c", script, "adrange-disks", *args], entrypoint=[], network_mode="none",
            remove=True, cap_drop=["ALL"], cap_add=["SYS_ADMIN"],
            device_cgroup_rules=["b 7:* rwm", "c 10:237 rwm"],  # loop devices and /dev/loop-control
            volumes={"/dev": {"bind": "/dev", "mode": "rw"}, DISK_DIR: {"bind": DISK_DIR, "mode": "rw"}},
            labels={LABEL_GAME: "helper"},
        )
    except ContainerError as exc:
        raise DiskError(f"box disks on {url_of(client)}: "
                        f"{(exc.stderr or b'').decode(errors='replace').strip()}") from None
    return out.decode(errors="replace")
