"""Who and where a service's checker runs: its own system user, run folder and cgroup.

Every service gets a dedicated unprivileged user (``adrange-chk<service id>``, shared by
the games of one host), made on first use with ``useradd --system``, a run folder
``/run/adrange/<game>/<service id>`` only that user (and root) can enter, and a cgroup with
memory, pids and CPU limits (cgroup v2 or v1, whichever the host mounts). Memory is
limited by what the processes really use, not by address space, so a JVM that reserves a
large heap still starts. Anything that cannot be
set up raises `SandboxError`: the action is then CHECKER_ERROR, never run as root.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

RUN_ROOT = Path(os.environ.get("ADRANGE_SANDBOX_RUN", "/run/adrange"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_NAME = "adrange"


class SandboxError(Exception):
    """A checker sandbox that cannot be set up; the message says what and why (admins see it)."""


@dataclass(frozen=True)
class Limits:
    """Per-service limits shared by all of its running actions."""

    memory: int = 1024 * 1024 * 1024  # bytes of memory really used (RSS + page cache), not address space
    pids: int = 512
    cpus: float = 1.0


@dataclass(frozen=True)
class Identity:
    """A service's checker user and places."""

    user: str
    uid: int
    gid: int
    run_dir: Path
    cgroup: str

    @property
    def socket(self) -> Path:
        return self.run_dir / "forkserver.sock"

    @property
    def home(self) -> Path:
        return self.run_dir / "home"


def user_name(service_id: int) -> str:
    """The service's user name (ids are 1-255: at most 255 users on a host)."""
    return f"adrange-chk{service_id}"


def run_dir(game: str, service_id: int) -> Path:
    """The service's run folder in a game (socket, logs, the checker's home)."""
    return RUN_ROOT / game / str(service_id)


def ensure_identity(game: str, service_id: int, limits: Limits) -> Identity:
    """The service's user, run folder and cgroup, made when missing (root only)."""
    if os.geteuid() != 0:
        raise SandboxError("the checker sandbox needs the worker to run as root (to make each service's "
                           "user and cgroup); checkers never run as the worker's own user")
    name = user_name(service_id)
    folder = run_dir(game, service_id)
    folder.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(RUN_ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entry = _user(name)
        for path in (folder, folder / "home"):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        cgroup = _cgroup(name, limits)
    return Identity(name, entry.pw_uid, entry.pw_gid, folder, cgroup)


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name],
                       check=True, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise SandboxError("cannot make the checker user: useradd is missing") from None
    except subprocess.CalledProcessError as exc:
        raise SandboxError(f"cannot make the checker user {name}: {exc.stderr.strip()}") from None
    return pwd.getpwnam(name)


def _cgroup(name: str, limits: Limits) -> str:
    """Make the service's cgroup with its limits; return a ':'-joined list of its
    cgroup.procs files (empty when the host offers no writable cgroups)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2
        parent = CGROUP_ROOT / CGROUP_NAME
        parent.mkdir(exist_ok=True)
        _write(CGROUP_ROOT / "cgroup.subtree_control", "+memory +pids +cpu", must=False)
        _write(parent / "cgroup.subtree_control", "+memory +pids +cpu", must=False)
        group = parent / name
        group.mkdir(exist_ok=True)
        _write(group / "memory.max", str(limits.memory))
        _write(group / "memory.swap.max", "0", must=False)  # a hog is killed, not swapped into a timeout
        _write(group / "pids.max", str(limits.pids))
        _write(group / "cpu.max", f"{int(limits.cpus * 100000)} 100000", must=False)
        return str(group / "cgroup.procs")
    procs = []
    for controller, settings in (("memory", {"memory.limit_in_bytes": str(limits.memory)}),
                                 ("pids", {"pids.max": str(limits.pids)}),
                                 ("cpu", {"cpu.cfs_period_us": "100000",
                                          "cpu.cfs_quota_us": str(int(limits.cpus * 100000))}),
                                 ("cpuacct", {})):  # CPU accounting of the service's checkers
        base = CGROUP_ROOT / controller
        if not base.is_dir():
            continue
        group = base / CGROUP_NAME / name
        try:
            group.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"cannot make the checker cgroup {group}: {exc.strerror}") from None
        for file, value in settings.items():
            _write(group / file, value)
        if controller == "memory":  # a hog is killed, not swapped into a timeout (where swap is accounted)
            _write(group / "memory.memsw.limit_in_bytes", str(limits.memory), must=False)
        procs.append(str(group / "cgroup.procs"))
    if not procs:
        raise SandboxError("no writable cgroups on this host: the checker sandbox needs memory and pids limits")
    return ":".join(procs)


def _write(path: Path, value: str, must: bool = True) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        if must:
            raise SandboxError(f"cannot set {path} to {value}: {exc.strerror}") from None


def join_cgroup(procs: str) -> None:
    """Move the calling process into the cgroup (every procs file); in a child before exec."""
    for path in procs.split(":"):
        if path:
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
