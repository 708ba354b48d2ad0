"""Per-service checker environments: a venv with the checker's own dependencies.

A checker declares its needs in a ``requirements.txt`` next to the checker file (or
``services[].checker.requirements``) and ``services[].checker.apt``. Its environment lives
at ``ENVS_ROOT/<hash>``, the hash taken over everything that goes into it, so services
with the same checker and pins share one and conflicting pins get two. An environment
holds a venv of Debian's ``/usr/bin/python3`` (runnable by every user), a copy of the
checker's folder, ``checker.lib`` with what it imports (``scoreboard.types`` and the
platform's ``requests`` stack, so no wheelhouse is needed for it) and the sandbox's
``forkserver.py``; all of it world-readable, for unprivileged checker users.

Environments are built offline from a wheelhouse (``adrange checkers fetch`` fills it on
a connected machine), or with ``online`` straight from the registry. A build happens in
``ENVS_ROOT/.<hash>.env`` under a file lock and is published by an atomic symlink
``ENVS_ROOT/<hash>``: nobody sees half an environment, and scripts pip installs keep
valid paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import scoreboard.types
from scoreboard.config import GameConfig, Service

ENVS_ROOT = Path("/var/lib/adrange/checker-envs")
WHEELHOUSE = Path("/var/lib/adrange/wheelhouse")
BASE_PYTHON = Path("/usr/bin/python3")
ONLINE_VARIABLE = "ADRANGE_CHECKERS_ONLINE"

_CHECKER_PACKAGE = Path(__file__).resolve().parent
_FORKSERVER = _CHECKER_PACKAGE / "sandbox" / "forkserver.py"
# What checker.lib imports from outside itself and the stdlib (tests/test_checker_envs.py keeps
# this true): platform files copied as they are, and the platform's installed distributions.
_VENDORED = {"scoreboard/types.py": Path(scoreboard.types.__file__)}
_LIB_DISTRIBUTIONS = ("requests",)
_SKIPPED = {"__pycache__", ".git"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class CheckerEnvError(Exception):
    """A checker environment that is missing or cannot be built; the message says how to fix it."""


@dataclass(frozen=True)
class CheckerEnv:
    """Where one service's checker environment is (it may not be built yet)."""

    root: Path
    python: Path
    checker_dir: Path
    checker: Path
    stamp: str

    @property
    def ready(self) -> bool:
        """Built completely, for this stamp."""
        try:
            return (self.root / ".ready").read_text().strip() == self.stamp
        except OSError:
            return False

    @property
    def forkserver(self) -> Path:
        """The sandbox's fork server copied into the environment (present if it existed at build)."""
        return self.root / "forkserver.py"


def envs_root() -> Path:
    """Where environments live: $ADRANGE_CHECKER_ENVS, else ENVS_ROOT."""
    return Path(os.environ.get("ADRANGE_CHECKER_ENVS") or ENVS_ROOT)


def wheelhouse_dir() -> Path:
    """The default wheelhouse: $ADRANGE_WHEELHOUSE, else WHEELHOUSE."""
    return Path(os.environ.get("ADRANGE_WHEELHOUSE") or WHEELHOUSE)


def checker_services(config: GameConfig) -> list[Service]:
    """The services whose checker runs in an environment (native and cli; not eno)."""
    return [s for s in config.services if s.checker.protocol != "eno"]


def requirements_file(config: GameConfig, service: Service) -> Path | None:
    """The service's requirements file: the configured one, else requirements.txt next to the checker."""
    if service.checker.requirements:
        return config.resolve(service.checker.requirements)
    default = _checker_file(config, service).parent / "requirements.txt"
    return default if default.is_file() else None


def requirements_files(config: GameConfig) -> list[Path]:
    """Every distinct requirements file of the game's checkers, sorted."""
    return sorted({f for s in checker_services(config) if (f := requirements_file(config, s))})


def env_for(config: GameConfig, service: Service) -> CheckerEnv:
    """Where the service's environment is; computes its identity, builds nothing."""
    checker = _checker_file(config, service)
    requirements = requirements_file(config, service)
    digest = hashlib.sha256()

    def part(tag: str, data: bytes) -> None:
        digest.update(b"%s\0%d\0" % (tag.encode(), len(data)) + data)

    part("python", _base_python()[1].encode())
    part("requirements", _read(requirements) if requirements else b"")
    part("apt", "\n".join(sorted(set(service.checker.apt))).encode())
    part("checker", checker.name.encode())
    for name, path in _files(checker.parent):
        part(f"folder:{name}", _read(path))
    for name, path in _platform_files():
        part(f"platform:{name}", _read(path))
    part("distributions", " ".join(f"{d.name}=={d.version}" for d in _lib_distributions()).encode())
    stamp = digest.hexdigest()
    root = envs_root() / stamp[:16]
    return CheckerEnv(root, root / "bin" / "python", root / "src", root / "src" / checker.name, stamp)


def build_env(config: GameConfig, service: Service, wheelhouse: Path | None = None,
              online: bool = False) -> CheckerEnv:
    """Build the service's environment unless it is ready; install its missing apt packages.

    Requirements come from `wheelhouse` (default `wheelhouse_dir()`) with no index, or with
    `online` from the registry (the wheelhouse too, if it exists).
    """
    env = env_for(config, service)
    if env.ready:
        return env
    if missing := missing_apt(service.checker.apt):
        _install_apt(missing)
    top = envs_root()
    try:
        _public_dir(top)
        with _locked(top / f".lock-{env.root.name}"):
            if not env.ready:
                _build(config, service, env, wheelhouse or wheelhouse_dir(), online)
    except OSError as exc:
        raise CheckerEnvError(f"cannot build a checker environment in {top}: {exc} "
                              f"(run `adrange checkers build` as root)") from None
    return env


def ensure_env(config: GameConfig, service: Service) -> CheckerEnv:
    """The service's environment, built offline from the default wheelhouse if missing (from the
    registry instead when $ADRANGE_CHECKERS_ONLINE=1); never installs apt packages."""
    env = env_for(config, service)
    if env.ready:
        return env
    if missing := missing_apt(service.checker.apt):
        raise CheckerEnvError(f"{service.name}: checker environment {env.root} missing and apt packages "
                              f"{', '.join(missing)} not installed: run `adrange checkers build` as root")
    try:
        return build_env(config, service, online=os.environ.get(ONLINE_VARIABLE) == "1")
    except CheckerEnvError as exc:
        raise CheckerEnvError(f"{service.name}: checker environment {env.root} missing and not buildable: {exc}; "
                              f"`adrange checkers build` builds it") from None


# Build backends an offline install of an sdist needs from the wheelhouse.
BUILD_TOOLS = ("setuptools", "wheel")


def fetch(config: GameConfig, wheelhouse: Path | None = None,
          done: Callable[[Path], None] | None = None) -> list[Path]:
    """Download every service's requirements (with dependencies) into `wheelhouse` for offline
    builds; call `done` after each requirements file. Returns the files fetched."""
    target = wheelhouse or wheelhouse_dir()
    files = requirements_files(config)
    _public_dir(target)
    if files:  # what pip needs to build a source-only package (checklib ships only an sdist) offline
        _pip(["--python", str(BASE_PYTHON), "download", "--no-input", "-q", "-d", str(target), *BUILD_TOOLS],
             cwd=target,
             what="fetch build tools", offline=False)
    for requirements in files:
        # For the interpreter the environments use (its version decides which releases fit).
        _pip(["--python", str(BASE_PYTHON), "download", "--no-input", "-q", "-d", str(target), "-r",
              str(requirements)],
             cwd=requirements.parent, what=f"fetch {requirements}", offline=False)
        _make_public(target)
        if done:
            done(requirements)
    return files


def requirement_lines(requirements: Path) -> list[str]:
    """A requirements file's requirements, comments and blank lines left out."""
    lines = (line.split(" #")[0].strip() for line in _read(requirements).decode(errors="replace").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def missing_apt(packages: list[str]) -> list[str]:
    """The Debian packages of `packages` that are not installed."""
    missing = []
    for package in packages:
        query = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package],
                               capture_output=True, text=True)
        if query.returncode or query.stdout.strip() != "installed":
            missing.append(package)
    return missing


# -- building ------------------------------------------------------------------------
def _build(config: GameConfig, service: Service, env: CheckerEnv, wheelhouse: Path, online: bool) -> None:
    top = env.root.parent
    work = top / f".{env.root.name}.env"
    if env.root.is_symlink() or env.root.exists():
        _remove(env.root)
    _remove(work)
    try:
        _run([str(BASE_PYTHON), "-m", "venv", "--without-pip", str(work)], "create the venv")
        site = work / "lib" / f"python{_base_python()[0]}" / "site-packages"
        _install_platform_part(site)
        if requirements := requirements_file(config, service):
            _install_requirements(work / "bin" / "python", requirements, wheelhouse, online)
        checker_dir = work / env.checker_dir.name
        shutil.copytree(_checker_file(config, service).parent, checker_dir, symlinks=False,
                        ignore=shutil.ignore_patterns(*_SKIPPED), ignore_dangling_symlinks=True)
        if _FORKSERVER.is_file():
            shutil.copy2(_FORKSERVER, work / env.forkserver.name)
        # Unprivileged users cannot write __pycache__ here: compile once now (best effort).
        compiled = [str(p) for p in (site, checker_dir, work / env.forkserver.name) if p.exists()]
        subprocess.run([str(work / "bin" / "python"), "-m", "compileall", "-q", "-j0", *compiled],
                       capture_output=True, check=False)
        _make_public(work)
        ready = work / ".ready"
        ready.write_text(env.stamp + "\n")
        ready.chmod(0o644)
        link = top / f".{env.root.name}.link"
        _remove(link)
        link.symlink_to(work.name)
        os.replace(link, env.root)
    except BaseException:
        _remove(work)
        raise


def _install_platform_part(site: Path) -> None:
    """checker.lib as the package checker.lib, the platform files it imports, and the platform's
    distributions it needs (with their dist-info, so a checker's own pins can replace them)."""
    shutil.copytree(_CHECKER_PACKAGE / "lib", site / "checker" / "lib", ignore=shutil.ignore_patterns(*_SKIPPED))
    (site / "checker" / "__init__.py").write_text('"""checker.lib, copied from the adrange platform."""\n')
    for name, path in _VENDORED.items():
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "__init__.py").touch()
        shutil.copy2(path, target)
    for dist in _lib_distributions():
        for file in dist.files or ():
            if file.parts[0] == ".." or _SKIPPED.intersection(file.parts):
                continue  # scripts outside site-packages, caches
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(dist.locate_file(file), target)


def _install_requirements(python: Path, requirements: Path, wheelhouse: Path, online: bool) -> None:
    """pip (the platform's) installs into the env's interpreter: the env needs no pip of its own."""
    sources = ["--find-links", str(wheelhouse)] if wheelhouse.is_dir() else []
    if not online:
        if not sources:
            raise CheckerEnvError(f"wheelhouse {wheelhouse} does not exist: run `adrange checkers fetch` "
                                  f"(on a connected machine; copy the folder here), or build with --online")
        sources.append("--no-index")
    _pip(["--python", str(python), "install", "--no-input", "-q", "--no-warn-script-location", *sources,
          "-r", str(requirements)], cwd=requirements.parent, what=f"install {requirements}", offline=not online)


def _pip(args: list[str], cwd: Path, what: str, offline: bool) -> None:
    """Run the platform's pip. Offline, the machine's pip settings (indexes, find-links,
    constraints) are ignored, so exactly the wheelhouse is used."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    if offline:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    hint = ("run `adrange checkers fetch` for these requirements, or build with --online" if offline
            else "is the package registry reachable?")
    _run([sys.executable, "-m", "pip", *args], what, cwd=cwd, env=env, hint=hint)


def _install_apt(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise CheckerEnvError(f"apt packages {', '.join(packages)} not installed: run `adrange checkers build` "
                              f"as root")
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "--", *packages],
         f"apt-get install {' '.join(packages)}", env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
         hint="is the range's apt mirror reachable (apt-get update)?")


def _run(cmd: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None,
         hint: str = "") -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    except OSError as exc:
        raise CheckerEnvError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    if proc.returncode:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise CheckerEnvError(f"{what} failed: {tail}" + (f"; {hint}" if hint else ""))


# -- helpers ---------------------------------------------------------------------------
def _checker_file(config: GameConfig, service: Service) -> Path:
    if not service.checker.path:
        raise CheckerEnvError(f"{service.name}: protocol {service.checker.protocol} has no checker environment")
    return config.resolve(service.checker.path)


@functools.cache
def _base_python() -> tuple[str, str]:
    """Debian's interpreter: ("3.11", its full version string)."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.version)"
    try:
        out = subprocess.run([str(BASE_PYTHON), "-c", probe], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CheckerEnvError(f"{BASE_PYTHON} does not run ({exc}): apt-get install python3") from None
    short, full = out.split("\n", 1)
    return short, full.strip()


@functools.cache
def _lib_distributions() -> tuple[importlib.metadata.Distribution, ...]:
    """The platform's installed distributions checker.lib needs, with their dependencies."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(_LIB_DISTRIBUTIONS)
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in found:
            continue
        try:
            found[name] = dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pending += [m.group() for r in dist.requires or () if "extra" not in r and (m := _NAME.match(r))]
    return tuple(found[name] for name in sorted(found))


def _platform_files() -> list[tuple[str, Path]]:
    files = [(f"checker/lib/{name}", path) for name, path in _files(_CHECKER_PACKAGE / "lib")]
    files += list(_VENDORED.items())
    if _FORKSERVER.is_file():
        files.append(("forkserver.py", _FORKSERVER))
    return files


def _files(folder: Path) -> list[tuple[str, Path]]:
    """A folder's files as (relative posix name, path), sorted, caches and .git left out."""
    out = []
    for base, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        for name in names:
            path = Path(base, name)
            if path.is_file():
                out.append((path.relative_to(folder).as_posix(), path))
    return sorted(out)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckerEnvError(f"cannot read {path}: {exc.strerror}") from None


def _public_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(parents=True)
        path.chmod(0o755)


def _make_public(top: Path) -> None:
    """Directories 0755, files 0644 (0755 if executable by the owner), symlinks left alone."""
    for base, _dirs, names in os.walk(top):
        os.chmod(base, 0o755)
        for name in names:
            path = os.path.join(base, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
