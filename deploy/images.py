"""Images, offline: the base image from debootstrap, challenge images, save and load.

- `build_base` makes ``adrange/base:bookworm`` without a registry: debootstrap a Debian
  root with the packages in ``deploy/base/packages.txt``, finish it in a chroot with
  ``deploy/base/finish.sh`` (users ``svc`` and ``team``, sshd, the box supervisor), then
  ``docker import`` it. The root file system is cached as a tarball, so importing it into
  another engine (or again after a prune) takes seconds; the image is skipped when it
  exists with the same recipe.
- `build_challenges` builds ``challenges/<name>/service/`` with build-arg ``BASE``, tagged
  ``adrange/<name>:<content hash>``: rebuilt only when the folder (or the base) changes.
- `save_images` / `load_images` move every ``adrange/*`` image as one tarball.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, ImageNotFound
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scoreboard.config import GameConfig, Service

from .engine import all_engines, url_of

BASE_IMAGE = "adrange/base:bookworm"
RECIPE_DIR = Path(__file__).with_name("base")
CACHE_DIR = Path(os.environ.get("ADRANGE_CACHE", Path.home() / ".cache" / "adrange"))
SUITE = "bookworm"
LABEL_RECIPE = "adrange.recipe"
LABEL_CONTENT = "adrange.content"
BOX_ENTRYPOINT = "/usr/local/sbin/adrange-box"


class ImageError(Exception):
    """An image that cannot be built, found or moved; the message says why."""


def _progress(console: Console | None) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    )


# -- base image ------------------------------------------------------------------
def recipe_hash() -> str:
    """A short hash of deploy/base/ (docs aside): a changed recipe means a new base image."""
    return _tree_hash(RECIPE_DIR, ignore=".md")[:16]


def base_packages() -> list[str]:
    """The Debian packages the base image includes."""
    lines = (RECIPE_DIR / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def debian_mirror() -> str:
    """The Debian mirror: $ADRANGE_DEBIAN_MIRROR, else the host's apt sources, else deb.debian.org."""
    if mirror := os.environ.get("ADRANGE_DEBIAN_MIRROR"):
        return mirror
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _rootfs_tarball(mirror: str, force: bool, console: Console) -> Path:
    """The cached root file system tarball for this recipe, made with debootstrap when missing."""
    tarball = CACHE_DIR / f"base-{SUITE}-{recipe_hash()}.tar"
    if tarball.exists() and not force:
        return tarball
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is missing: apt-get install debootstrap (or run deploy/setup.sh --docker)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    (CACHE_DIR / "debootstrap").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adrange-rootfs-") as tmp:
        root = Path(tmp) / "root"
        cmd = [
            "debootstrap", "--variant=minbase", f"--cache-dir={CACHE_DIR / 'debootstrap'}",
            f"--include={','.join(base_packages())}", SUITE, str(root), mirror,
        ]
        with console.status(f"debootstrap {SUITE} from {mirror} (about a minute)"):
            _run(cmd, "debootstrap")
            stage = root / "tmp" / "adrange-base"
            shutil.copytree(RECIPE_DIR, stage)
            _run(["chroot", str(root), "/bin/sh", "/tmp/adrange-base/finish.sh"], "finishing the base root")
            partial = tarball.with_suffix(".partial")
            _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], "tar of the base root")
            partial.rename(tarball)
    return tarball


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ImageError(f"{what} failed (exit {result.returncode}): {' '.join(cmd[:3])} ...\n{tail}")


def _image_label(client: docker.DockerClient, name: str, label: str) -> str | None:
    try:
        return (client.images.get(name).labels or {}).get(label)
    except ImageNotFound:
        return None


def build_base(
    clients: Iterable[docker.DockerClient],
    image: str = BASE_IMAGE,
    force: bool = False,
    mirror: str | None = None,
    console: Console | None = None,
) -> list[str]:
    """Make sure every engine has the base image for the current recipe; return what was done."""
    console = console or Console(stderr=True)
    recipe = recipe_hash()
    repository, _, tag = image.partition(":")
    done = []
    for client in clients:
        url = url_of(client)
        if not force and _image_label(client, image, LABEL_RECIPE) == recipe:
            done.append(f"{url}: {image} up to date")
            continue
        tarball = _rootfs_tarball(mirror or debian_mirror(), force, console)
        force = False  # one debootstrap serves every engine
        changes = [
            f"LABEL {LABEL_RECIPE}={recipe}", "ENV LANG=C.UTF-8", "WORKDIR /srv",
            f'ENTRYPOINT ["{BOX_ENTRYPOINT}"]', 'CMD ["/srv/run.sh"]',
        ]
        with console.status(f"importing {image} into {url}"):
            try:
                client.api.import_image_from_file(str(tarball), repository=repository, tag=tag or "latest",
                                                  changes=changes)
            except APIError as exc:
                raise ImageError(f"docker import into {url} failed: {exc.explanation or exc}") from None
        done.append(f"{url}: {image} imported")
    return done


# -- challenge images ----------------------------------------------------------------
def _tree_hash(folder: Path, ignore: str | None = None) -> str:
    """A hash over the names, exec bits and bytes of every file below `folder`."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or (ignore and path.name.endswith(ignore)):
            continue
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            digest.update(f"F {rel} {path.stat().st_mode & 0o111:o}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        elif path.is_dir():
            digest.update(f"D {rel}\n".encode())
    return digest.hexdigest()


def service_folder(config: GameConfig, service: Service) -> Path:
    """The folder with the service's Dockerfile: ``<challenge>/service``."""
    if not service.challenge:
        raise ImageError(f"service {service.name!r} has no challenge folder (needed in hosted mode)")
    folder = config.resolve(service.challenge) / "service"
    if not (folder / "Dockerfile").is_file():
        raise ImageError(f"service {service.name!r}: no Dockerfile in {folder}")
    return folder


def image_name(config: GameConfig, service: Service, client: docker.DockerClient) -> str:
    """``adrange/<challenge>:<hash>``, the hash over the service folder and the engine's base image."""
    folder = service_folder(config, service)
    base = _base_identity(client, config.deploy.base_image)
    tag = hashlib.sha256(f"{_tree_hash(folder)}:{base}".encode()).hexdigest()[:16]
    name = re.sub(r"[^a-z0-9_.-]+", "-", folder.parent.name.lower()).strip("-.") or "challenge"
    return f"adrange/{name}:{tag}"


def _base_identity(client: docker.DockerClient, base_image: str) -> str:
    """The base image's root layer: the same tarball gives the same id on every engine."""
    try:
        return client.images.get(base_image).attrs["RootFS"]["Layers"][0]
    except ImageNotFound:
        raise ImageError(f"base image {base_image} is missing on {url_of(client)}: "
                         "run `adrange images base`") from None


def hosted_services(config: GameConfig) -> list[Service]:
    """The enabled services that adrange deploys."""
    return [s for s in config.services if s.enabled]


def build_challenges(config: GameConfig, force: bool = False, console: Console | None = None) -> dict[str, int]:
    """Build every enabled service's image on every engine unless it exists; counts built/cached."""
    console = console or Console(stderr=True)
    counts = {"built": 0, "cached": 0}
    clients = all_engines(config)
    services = hosted_services(config)
    with _progress(console) as progress:
        task = progress.add_task("challenge images", total=len(services) * len(clients))
        for client in clients:
            for service in services:
                name = image_name(config, service, client)
                progress.update(task, description=f"{name}")
                if force or not has_image(client, name):
                    _build_one(client, service_folder(config, service), name, config.deploy.base_image,
                               lambda line, name=name: progress.update(task, description=f"{name}: {line[:60]}"))
                    counts["built"] += 1
                else:
                    counts["cached"] += 1
                progress.advance(task)
    return counts


def has_image(client: docker.DockerClient, name: str) -> bool:
    """True if the engine has the image `name`."""
    try:
        client.images.get(name)
        return True
    except ImageNotFound:
        return False


def _build_one(client: docker.DockerClient, folder: Path, name: str, base: str,
               report: Callable[[str], object]) -> None:
    log: list[str] = []
    try:
        for chunk in client.api.build(path=str(folder), tag=name, buildargs={"BASE": base}, rm=True,
                                      forcerm=True, decode=True, labels={LABEL_CONTENT: name.rsplit(":", 1)[1]}):
            if "error" in chunk:
                raise BuildError(chunk["error"], log)
            if line := (chunk.get("stream") or "").strip():
                log.append(line)
                if line.startswith("Step "):
                    report(line)
    except (BuildError, APIError) as exc:
        tail = "\n".join(log[-12:])
        raise ImageError(f"building {name} from {folder} failed: {exc}\n{tail}") from None


# -- save and load -------------------------------------------------------------------
def adrange_images(client: docker.DockerClient) -> list[str]:
    """Every ``adrange/*`` tag on this engine."""
    return sorted(tag for image in client.images.list() for tag in image.tags if tag.startswith("adrange/"))


def save_images(client: docker.DockerClient, path: str | Path) -> list[str]:
    """Write every adrange image into one tarball (shared layers once); return the tags."""
    tags = adrange_images(client)
    if not tags:
        raise ImageError("no adrange/* images to save: run `adrange images base` and `adrange images build`")
    api = client.api
    response = api._get(api._url("/images/get"), params={"names": tags}, stream=True)
    api._raise_for_status(response)
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)
    partial.rename(path)
    return tags


def load_images(clients: Iterable[docker.DockerClient], path: str | Path) -> int:
    """Load a tarball from `save_images` into every engine; return the number of engines."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    count = 0
    for client in clients:
        with path.open("rb") as data:
            try:
                client.images.load(data)
            except APIError as exc:
                raise ImageError(f"loading {path} into {url_of(client)} failed: {exc}") from None
        count += 1
    return count

