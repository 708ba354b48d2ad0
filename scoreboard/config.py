"""The game file: one YAML document, validated with pydantic.

`load_config(path)` returns a `GameConfig` or raises `ConfigError`, whose message names
the file, the key path (``teams[2].name``) and what is wrong. Nothing starts on a bad file.

A service entry that names ``challenge: <folder>`` takes its defaults from
``<folder>/challenge.yml`` (`CHALLENGE_KEYS`); the game file's own keys override them key by
key, ``checker`` sub-key by sub-key. A value that came from a challenge.yml is named with it
in every message: ``services[1].ports (from challenges/notes/challenge.yml): ...``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .types import ServiceID, TeamID

Port = Annotated[int, Field(ge=1, le=65535)]


class ConfigError(Exception):
    """A game file that cannot be used; the message says where and why."""


# Seconds kept free at the end of a round to record the last results before it closes: an
# action needs its whole timeout plus this before the round's end.
RECORD_MARGIN = 0.5
DEFAULT_TIMEOUT = 10.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaustScoring(_Model):
    """FAUST formula weights: total = atk*ATK + def*DEF + sla*SLA."""

    atk_weight: float = 1.0
    def_weight: float = 1.0
    sla_weight: float = 1.0


class RatingScoring(_Model):
    """Elo-like points moved from victim to attacker per stolen flag (see scoring/rating.py)."""

    initial: int = Field(1000, ge=0)
    scale: int = Field(50, gt=0, description="points moved between equal teams is scale/2")
    spread: int = Field(400, gt=0, description="point difference that changes odds tenfold")


class AwdScoring(_Model):
    """Zero-sum rounds: attack points per box per round, down points per DOWN box."""

    attack_points: int = Field(100, gt=0)
    down_points: int = Field(50, ge=0)
    initial: int = Field(10000, ge=0)


class Scoring(_Model):
    formula: Literal["faust", "rating", "awd"] = "faust"
    faust: FaustScoring = FaustScoring()
    rating: RatingScoring = RatingScoring()
    awd: AwdScoring = AwdScoring()


class Game(_Model):
    name: str = Field(min_length=1, max_length=64)
    secret: str = Field(min_length=16, description="HMAC key for flags and derived tokens")
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    round_seconds: float = Field(60, gt=0)
    flag_lifetime: int = Field(5, ge=1, description="rounds a flag stays valid")
    flag_prefix: str | None = Field(None, description="wrap flags as PREFIX{...}")
    scoring: Scoring = Scoring()
    require_service_up: bool = Field(False, description="deny flags from a team whose service is down")
    freeze_at: dt.datetime | None = None

    @field_validator("name")
    @classmethod
    def _name_is_key_safe(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("use letters, digits, '_', '.' or '-' only (it prefixes Redis keys)")
        return value

    @field_validator("flag_prefix")
    @classmethod
    def _prefix_is_word(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_]{1,16}", value):
            raise ValueError("flag_prefix must be 1-16 letters, digits or '_'")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> Game:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Team(_Model):
    name: str = Field(min_length=1, max_length=64)
    id: TeamID | None = Field(None, ge=1, le=4095)
    token: str | None = Field(None, min_length=8)
    address: str | None = Field(None, description="target host; default from deploy.address_scheme")
    network: str | None = Field(None, description="source network for TCP submission, CIDR")
    nop: bool = False

    @field_validator("network")
    @classmethod
    def _network_is_cidr(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network in CIDR form: {exc}") from None
        return value


class CheckerSpec(_Model):
    protocol: Literal["native", "cli", "eno"] = "native"
    path: str | None = Field(None, description="checker file (native, cli), relative to the game file "
                             "(given by a challenge.yml: relative to the challenge folder)")
    class_name: str | None = Field(None, alias="class")
    url: str | None = Field(None, description="ENO checker service URL")
    timeout: float | None = Field(None, gt=0, description="seconds per action; default 10, or half a "
                                  "short round; must fit the round (game.round_seconds - 0.5)")
    requirements: str | None = Field(None, description="pip requirements file of the checker's environment, "
                                     "relative to the game file (given by a challenge.yml: to the challenge "
                                     "folder); default requirements.txt next to the checker")
    apt: list[str] = Field(default_factory=list, description="Debian packages the checker needs; "
                           "`adrange checkers build` installs the missing ones")

    @field_validator("apt")
    @classmethod
    def _apt_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
                raise ValueError(f"{name!r} is not a Debian package name")
        return value

    @model_validator(mode="after")
    def _needs_target(self) -> CheckerSpec:
        if self.protocol == "eno" and not self.url:
            raise ValueError("protocol eno needs url")
        if self.protocol in ("native", "cli") and not self.path:
            raise ValueError(f"protocol {self.protocol} needs path")
        if self.protocol == "eno" and (self.requirements or self.apt):
            raise ValueError("requirements, apt: only native and cli checkers run in a checker environment")
        return self


class Service(_Model):
    name: str = Field(min_length=1, max_length=64)
    id: ServiceID | None = Field(None, ge=1, le=255)
    checker: CheckerSpec
    vulns: list[int] = Field(default_factory=lambda: [1], min_length=1, max_length=15)
    ports: list[int] = Field(default_factory=list)
    challenge: str | None = Field(None, description="challenge folder, relative to the game file: its "
                                  "challenge.yml gives the defaults of CHALLENGE_KEYS; hosted targets are "
                                  "built from its service/")
    flag_mode: Literal["service", "file"] = "service"
    flag_file: str = "/flag"
    enabled: bool = True
    writable: list[str] = Field(default_factory=lambda: ["/srv/*/data"],
                                description="paths under /srv the service user may write (globs); "
                                "the rest of /srv is the team's, read-only for the service")

    @field_validator("vulns")
    @classmethod
    def _weights_positive(cls, value: list[int]) -> list[int]:
        if any(w < 0 for w in value) or sum(value) == 0:
            raise ValueError("vuln weights must be >= 0 with at least one > 0")
        return value

    @field_validator("ports")
    @classmethod
    def _ports_valid(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} out of range 1-65535")
        return value

    @field_validator("writable")
    @classmethod
    def _writable_under_srv(cls, value: list[str]) -> list[str]:
        for path in value:
            parts = path.split("/")
            if (not re.fullmatch(r"/srv/[A-Za-z0-9_.*?/-]+", path) or path.endswith("/")
                    or any(part in ("", ".", "..") for part in parts[2:])):
                raise ValueError(f"{path!r}: give a path below /srv (letters, digits, _.-/ and the globs * ?), "
                                 "not /srv itself")
        return value


class Limits(_Model):
    line_length: int = Field(256, ge=40)
    request_bytes: int = Field(2_000_000, ge=1024)
    batch_size: int = Field(5000, ge=1)
    rate_per_team: int = Field(20000, ge=1, description="flags to decide (well-formed, signed, of another team) "
                               "per second per team, all processes together")
    connections_per_source: int = Field(64, ge=1, description="open connections per source address")
    connections_per_network: int = Field(256, ge=1, description="open connections per team network "
                                         "(or per /24 outside every team network)")
    connections_total: int = Field(10000, ge=1, description="open connections in all; kept below the "
                                   "open-file limit")
    idle_timeout: float = Field(120, gt=0, description="seconds without a complete line before closing")
    session_timeout: float = Field(900, gt=0, description="seconds a connection may stay open in all")
    token_failures: int = Field(20, ge=1, description="wrong team tokens from one address before a lockout")
    token_lockout: float = Field(60, ge=0, description="seconds an address guessing tokens is locked out")


class Submission(_Model):
    http: bool = True
    host: str = "127.0.0.1"
    faust_port: Port | None = 31337
    ructf_port: Port | None = 31338
    forcad_port: Port | None = 31339
    limits: Limits = Limits()


class Web(_Model):
    host: str = "127.0.0.1"
    port: Port = 5000
    admin_password_hash: str | None = None
    connections_per_source: int = Field(1024, ge=1, description="open connections per source address (a "
                                        "venue's spectators may share one)")
    connections_per_network: int = Field(2048, ge=1, description="open connections per team network "
                                         "(or per /24 outside every team network)")
    connections_total: int = Field(10000, ge=1, description="open connections in all; kept below the "
                                   "open-file limit")
    header_timeout: float = Field(10, gt=0, description="seconds to send a request's line and headers")
    body_timeout: float = Field(30, gt=0, description="seconds to send a request's body")
    idle_timeout: float = Field(30, gt=0, description="seconds a kept-alive connection may wait for its "
                                "next request, or leave a response unread")
    session_key: str | None = Field(None, min_length=32, description="signs the session cookies; null: "
                                    "generated once per game and kept in Redis")
    session_lifetime: float = Field(43200, gt=0, description="seconds a login stays valid after its last use")
    language: Literal["zh", "en"] = "zh"
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, description="reverse proxies (addresses or networks) whose X-Forwarded-For "
        "names the client; from anyone else the header is ignored")
    proxy_hops: int = Field(1, ge=1, le=5, description="trusted proxies in a row in front of the web nodes")


CONSTRAINT_RE = re.compile(r"(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)"
                           r"|engine\.labels\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*[^\s=!]+")
SPREAD_RE = re.compile(r"(node\.labels\.[A-Za-z0-9_.-]+|engine\.labels\.[A-Za-z0-9_.-]+|node\.(id|hostname))")


class SwarmPlacement(_Model):
    """deploy.swarm: where Swarm may put the boxes (deploy.mode swarm)."""

    build_engine: str = Field("unix:///var/run/docker.sock", description="engine that builds the images; "
                              "deploy/swarm_images.py copies them to every node")
    constraints: list[str] = Field(default_factory=list, description="Swarm constraints for every box")
    teams: dict[str, list[str]] = Field(default_factory=dict, description="team name or id: its boxes' constraints")
    services: dict[str, list[str]] = Field(default_factory=dict, description="service name: its boxes' constraints")
    spread: list[str] = Field(default_factory=list, description="node labels to spread boxes over, in order "
                              "(Swarm spreads over nodes anyway)")

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: list[str]) -> list[str]:
        return _check_constraints(value)

    @field_validator("teams", "services")
    @classmethod
    def _keyed_constraints(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, items in value.items():
            try:
                _check_constraints(items)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return value

    @field_validator("spread")
    @classmethod
    def _spread(cls, value: list[str]) -> list[str]:
        for item in value:
            if not SPREAD_RE.fullmatch(item):
                raise ValueError(f"{item!r}: give a node label like node.labels.rack")
        return value


def _check_constraints(items: list[str]) -> list[str]:
    for item in items:
        if not CONSTRAINT_RE.fullmatch(item.strip()):
            raise ValueError(f"{item!r} is not a Swarm constraint (node.labels.NAME==VALUE, node.hostname!=HOST, "
                             "node.role==worker ...)")
    return [item.strip() for item in items]


class Deploy(_Model):
    mode: Literal["hosted", "swarm", "external"] = "external"
    engines: list[str] = Field(default_factory=lambda: ["unix:///var/run/docker.sock"])
    swarm: SwarmPlacement = SwarmPlacement()

    @property
    def hosts_boxes(self) -> bool:
        """True when adrange runs the targets (hosted or swarm mode)."""
        return self.mode in ("hosted", "swarm")

    @field_validator("engines")
    @classmethod
    def _engine_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"(unix|tcp|ssh|http|https)://\S+$", url):
                raise ValueError(f"{url!r} is not a Docker engine URL (unix:///var/run/docker.sock, "
                                 "tcp://host:2376, ssh://user@host)")
        return value
    address_scheme: str = Field("127.0.{team}.1", description="format with {team}")
    network_scheme: str = Field("127.0.{team}.0/24", description="team source network")
    box_subnet: str = Field("10.77.0.0/16", description="game bridge network for boxes")
    base_image: str = "adrange/base:bookworm"
    cpus: float = 0.5
    memory: str = "256m"
    pids: int = 128
    ssh: bool = True
    disk: str | None = Field("256m", description="each box's /srv: an ext4 file system of this size on a loop "
                             "device (null: /srv stays in the container layer, uncapped)")
    tmpfs: str = Field("32m", description="size of each in-memory scratch mount of a box (/tmp, /var/tmp, "
                       "/run, /var/log, /home/team, /dev/shm); counted in the box's memory")

    @field_validator("disk", "tmpfs")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"(\d+)([kmg])", value.lower())
        if not match:
            raise ValueError(f"{value!r}: give a size like 256m (k, m or g)")
        if int(match[1]) * 1024 ** " kmg".index(match[2]) < 16 * 1024 ** 2:
            raise ValueError(f"{value!r}: at least 16m")
        return match[0]

    @field_validator("address_scheme", "network_scheme")
    @classmethod
    def _scheme_formats(cls, value: str) -> str:
        try:
            value.format(team=1)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"use {{team}} as the only placeholder ({type(exc).__name__}: {exc})") from None
        return value


def size_bytes(size: str) -> int:
    """Bytes of a size like ``64m`` (k, m, g: powers of 1024); ValueError for anything else."""
    match = re.fullmatch(r"(\d+)([kmg])", size.lower())
    if not match:
        raise ValueError(f"{size!r}: give a size like 64m (k, m or g)")
    return int(match[1]) * 1024 ** " kmg".index(match[2])


class Captures(_Model):
    """Traffic captures of the hosted boxes, handed to their teams (scoreboard/captures.py)."""

    enabled: bool = Field(False, description="capture every box's traffic (hosted mode, local engine)")
    dir: str = Field("/var/lib/adrange/captures", description="folder of the pcap files (a folder per game "
                     "inside), relative to the game file; the web nodes must read it")
    delay_rounds: int = Field(1, ge=1, description="a round's files go to the team once this many rounds "
                              "have begun since")
    file_size: str = Field("64m", description="a file is closed and the next part begun at this size")
    team_size: str = Field("2g", description="all of a team's files; the oldest are deleted first")
    filter: str = Field("not tcp port 22", max_length=1000, description="tcpdump (BPF) filter of what is "
                        "captured; default: everything but the team's own SSH")
    user: str = Field("tcpdump", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", description="tcpdump runs as this user "
                      "once capturing (-Z)")

    @field_validator("file_size", "team_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if size_bytes(value) < 1024 ** 2:
            raise ValueError(f"{value!r}: at least 1m")
        return value.lower()

    @model_validator(mode="after")
    def _team_holds_a_file(self) -> Captures:
        if size_bytes(self.team_size) < size_bytes(self.file_size):
            raise ValueError(f"team_size {self.team_size} is smaller than file_size {self.file_size}")
        return self


class GameConfig(_Model):
    """A whole game file."""

    game: Game
    teams: list[Team] = Field(min_length=1)
    services: list[Service] = Field(min_length=1)
    submission: Submission = Submission()
    web: Web = Web()
    deploy: Deploy = Deploy()
    captures: Captures = Captures()
    redis_url: str = Field("redis://127.0.0.1:6379/0", pattern=r"^(redis|rediss|unix)://\S+$")
    base_dir: Path = Field(Path("."), exclude=True)
    # per services[] index: (the challenge.yml as the game file names it, keys it gave: "ports", "checker.path")
    _origins: dict[int, tuple[str, set[str]]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _fill_and_check(self) -> GameConfig:
        _assign_ids(self.teams, "teams")
        _assign_ids(self.services, "services")
        _unique(self.teams, "name", "teams")
        _unique(self.services, "name", "services")
        for team in self.teams:
            if team.token is None:
                team.token = derive_token(self.game.secret, team.id)
            if team.address is None:
                team.address = self.deploy.address_scheme.format(team=team.id)
            if team.network is None:
                team.network = self.deploy.network_scheme.format(team=team.id)
                try:
                    ipaddress.ip_network(team.network, strict=False)
                except ValueError as exc:
                    raise ValueError(f"deploy.network_scheme gives team {team.name!r} no network: {exc}") from None
        _unique(self.teams, "token", "teams")
        _fit_timeouts(self.services, self.game.round_seconds)
        _check_placement_keys(self)
        _check_captures(self)
        if not any(not t.nop for t in self.teams):
            raise ValueError("teams: at least one team must not be nop")
        return self

    # -- lookups -----------------------------------------------------------------
    def team(self, team_id: TeamID) -> Team:
        """The team with this id (KeyError if none)."""
        for team in self.teams:
            if team.id == team_id:
                return team
        raise KeyError(team_id)

    def service(self, service_id: ServiceID) -> Service:
        """The service with this id (KeyError if none)."""
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(service_id)

    @property
    def playing_teams(self) -> list[Team]:
        """Teams that score (not NOP)."""
        return [t for t in self.teams if not t.nop]

    def resolve(self, relative: str) -> Path:
        """A path from the game file, made absolute against the file's folder."""
        path = Path(relative)
        return path if path.is_absolute() else (self.base_dir / path).resolve()


def derive_token(secret: str, team_id: TeamID) -> str:
    """A per-team token derived from the game secret and the team's id (stable across
    renames), for teams given none."""
    return hmac.new(secret.encode(), b"token:%d" % team_id, hashlib.sha256).hexdigest()[:32]


def _check_placement_keys(config: GameConfig) -> None:
    """deploy.swarm.teams and .services name teams and services of the game."""
    teams = {t.name for t in config.teams} | {str(t.id) for t in config.teams}
    for key in config.deploy.swarm.teams:
        if key not in teams:
            raise ValueError(f"deploy.swarm.teams: {key!r} is no team of the game (give a team's name or id)")
    services = {s.name for s in config.services}
    for key in config.deploy.swarm.services:
        if key not in services:
            raise ValueError(f"deploy.swarm.services: {key!r} is no service of the game (give a service's name)")


def _fit_timeouts(services: list[Service], round_seconds: float) -> None:
    """Give each checker its default timeout; refuse one that cannot run whole in a round
    (an action is only started with its whole timeout left, so it would never run)."""
    room = round_seconds - RECORD_MARGIN
    for index, service in enumerate(services):
        if service.checker.timeout is None:
            service.checker.timeout = min(DEFAULT_TIMEOUT, round_seconds / 2)
        elif service.checker.timeout > room:
            raise ValueError(
                f"services[{index}].checker.timeout: {service.checker.timeout:g}s does not fit a "
                f"{round_seconds:g}s round (game.round_seconds): an action must be able to run its whole "
                f"timeout and {RECORD_MARGIN:g}s to record it before the round ends; use at most {room:g}")


def _check_captures(config: GameConfig) -> None:
    """Captures need boxes on this host, with room for a round's files of every box of a team."""
    captures = config.captures
    if not captures.enabled:
        return
    if config.deploy.mode != "hosted":
        why = "Swarm places the boxes on its nodes" if config.deploy.mode == "swarm" else \
            "teams bring their own vulnboxes"
        raise ValueError(f"captures.enabled: only deploy.mode hosted captures its boxes' traffic (this game is "
                         f"{config.deploy.mode}: {why})")
    remote = [url for url in config.deploy.engines if not url.startswith("unix://")]
    if remote:
        raise ValueError(f"captures.enabled: the capture process runs tcpdump in the boxes' network namespaces on "
                         f"this host: deploy.engines {remote} are not local unix:// sockets")
    services = sum(1 for s in config.services if s.enabled)
    if size_bytes(captures.team_size) < size_bytes(captures.file_size) * services:
        raise ValueError(f"captures.team_size: {captures.team_size} cannot hold one {captures.file_size} file "
                         f"(captures.file_size) for each of a team's {services} boxes")


def _assign_ids(items: list[Any], where: str) -> None:
    used = {item.id for item in items if item.id is not None}
    if len(used) != len([i for i in items if i.id is not None]):
        raise ValueError(f"{where}: two entries share an id")
    next_id = 1
    for item in items:
        if item.id is None:
            while next_id in used:
                next_id += 1
            item.id = next_id
            used.add(next_id)


def _unique(items: list[Any], attr: str, where: str) -> None:
    seen: dict[Any, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, attr)
        if value in seen:
            raise ValueError(f"{where}[{index}].{attr}: {value!r} repeats {where}[{seen[value]}]")
        seen[value] = index


# The keys of a challenge.yml that are defaults of a service entry naming its folder. Every
# other key (description, vuln_docs, author, ...) is documentation and not read.
CHALLENGE_KEYS = ("name", "ports", "vulns", "flag_mode", "flag_file", "checker", "writable")
# checker sub-keys that are paths: in a challenge.yml relative to the challenge folder
_CHALLENGE_PATHS = ("path", "requirements")

Origins = dict[int, tuple[str, set[str]]]


def _format_location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_SERVICE_KEY = re.compile(r"services\[(\d+)\]\.(\w+)(?:\.(\w+))?")


def _origin_note(where: str, origins: Origins, missing: bool = False) -> str:
    """`where` (a key path like ``services[1].checker.path``) with the challenge.yml that gave
    its value, if one did."""
    match = _SERVICE_KEY.match(where)
    if not match or int(match[1]) not in origins:
        return where
    label, keys = origins[int(match[1])]
    key, sub = match[2], match[3]
    if missing:
        return f"{where} (not in {label} either)"
    if key == "checker" and "checker" not in keys:
        if sub is None:
            return f"{where} (with keys from {label})" if any(k.startswith("checker.") for k in keys) else where
        key = f"checker.{sub}"
    return f"{where} (from {label})" if key in keys else where


def _note_message(message: str, origins: Origins) -> str:
    """A ``services[i].key: problem`` message with the challenge.yml that gave the key."""
    where, sep, rest = message.partition(": ")
    return _origin_note(where, origins) + sep + rest if sep and _SERVICE_KEY.fullmatch(where) else message


def _read_challenge(folder: Path, label: str) -> dict[str, Any]:
    """A challenge.yml's mapping; ValueError saying what is wrong with it."""
    try:
        meta = yaml.safe_load(folder.joinpath("challenge.yml").read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{label}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{label}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""
        raise ValueError(f"{label}:{at} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{label}: the top level must be a mapping (name, ports, vulns, checker, ...)")
    return meta


def _with_challenge(entry: dict[str, Any], index: int, base_dir: Path) -> tuple[dict[str, Any], str, set[str]]:
    """A service entry with the defaults of its challenge's challenge.yml filled in, the label
    of that file and the keys it gave; ValueError (its message a key path first) when the file
    is needed and cannot be used. A folder without challenge.yml is fine for an entry that
    gives name and a checker with its path or url itself (a bare service/Dockerfile)."""
    challenge = entry["challenge"]
    label = str(PurePath(challenge) / "challenge.yml")
    folder = Path(challenge) if Path(challenge).is_absolute() else (base_dir / challenge).resolve()
    own = entry.get("checker")
    needed = "name" not in entry or not isinstance(own, dict) or not {"path", "url"} & set(own)
    if not folder.is_dir():
        if needed:
            raise ValueError(f"services[{index}].challenge: {challenge}: no such folder ({folder})")
        return entry, label, set()
    if not (folder / "challenge.yml").is_file():
        if needed:
            raise ValueError(f"services[{index}].challenge: {challenge}: no challenge.yml in {folder} (the "
                             "entry gives no name or checker path/url of its own)")
        return entry, label, set()
    try:
        meta = _read_challenge(folder, label)
    except ValueError as exc:
        raise ValueError(f"services[{index}].challenge: {exc}") from None
    merged = {key: meta[key] for key in CHALLENGE_KEYS if key in meta and key != "checker" and key not in entry}
    given = set(merged)
    if "checker" in meta:
        checker = meta["checker"]
        if not isinstance(checker, dict):
            raise ValueError(f"services[{index}].checker (from {label}): give a mapping of checker keys "
                             f"(protocol, path, class, timeout, ...), not {type(checker).__name__} {checker!r}")
        checker = dict(checker)
        for key in _CHALLENGE_PATHS:
            if isinstance(checker.get(key), str):
                checker[key] = str(PurePath(challenge) / checker[key])  # absolute stays absolute
        if "checker" not in entry:
            merged["checker"] = checker
            given.add("checker")
        elif isinstance(own, dict):  # sub-key by sub-key
            merged["checker"] = {**checker, **own}
            given |= {f"checker.{key}" for key in checker if key not in own}
    return {**entry, **merged}, label, given


def _fill_from_challenges(data: dict[str, Any], base_dir: Path) -> tuple[dict[str, Any], Origins, list[str]]:
    """The game data with every ``challenge:`` entry's defaults filled in (copies; `data` is
    not changed), where each default came from, and the problems of the challenge.yml files."""
    services = data.get("services")
    if not isinstance(services, list):
        return data, {}, []
    filled, origins, problems = [], {}, []
    for index, entry in enumerate(services):
        if isinstance(entry, dict) and isinstance(entry.get("challenge"), str):
            try:
                entry, label, given = _with_challenge(entry, index, base_dir)
            except ValueError as exc:
                problems.append(str(exc))
            else:
                origins[index] = (label, given)
        filled.append(entry)
    return {**data, "services": filled}, origins, problems


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> GameConfig:
    """Validate already-loaded YAML data; raise ConfigError naming the key and the problem.
    Relative paths (challenge folders among them) are taken against `base_dir`, by default
    the working directory."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with game, teams, services")
    base_dir = base_dir or Path(".").resolve()
    data, origins, problems = _fill_from_challenges(data, base_dir)
    lines = [f"{source}: {problem}" for problem in problems]
    failed = {int(m[1]) for m in map(_SERVICE_KEY.match, problems) if m}  # not their noise too
    try:
        config = GameConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if len(loc) > 1 and loc[0] == "services" and loc[1] in failed:
                continue
            msg = _note_message(err["msg"].removeprefix("Value error, "), origins)
            where = _origin_note(_format_location(loc), origins, missing=err["type"] == "missing")
            lines.append(f"{source}: {where}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    if lines:
        raise ConfigError("\n".join(lines))
    config.base_dir = base_dir
    config._origins = origins
    _check_files(config, source)
    return config


def _check_files(config: GameConfig, source: str) -> None:
    """Refuse files the game file names explicitly but that are not there."""
    lines = []
    for index, service in enumerate(config.services):
        if service.checker.requirements and not config.resolve(service.checker.requirements).is_file():
            lines.append(f"{source}: " + _note_message(
                f"services[{index}].checker.requirements: no such file: "
                f"{config.resolve(service.checker.requirements)}", config._origins))
    if lines:
        raise ConfigError("\n".join(lines))


def offline_problems(config: GameConfig) -> list[str]:
    """What `adrange validate` can tell without Redis or Docker: checker files and classes
    that are not there, challenge folders that are not there (or without a Dockerfile in
    hosted mode), ENO checker URLs that are not HTTP; a value a challenge.yml gave is named
    with it. (Loading stays lenient on these, so a tool can read a game whose files live
    elsewhere.)"""
    problems = []
    for index, service in enumerate(config.services):
        where = f"services[{index}]"
        spec = service.checker
        if spec.protocol in ("native", "cli"):
            if not spec.path:
                problems.append(f"{where}.checker.path: a {spec.protocol} checker needs its file")
            elif not config.resolve(spec.path).is_file():
                problems.append(f"{where}.checker.path: no such file: {config.resolve(spec.path)}")
            elif spec.class_name and not re.search(rf"^class\s+{re.escape(spec.class_name)}\b",
                                                   config.resolve(spec.path).read_text(errors="replace"), re.M):
                problems.append(f"{where}.checker.class: no class {spec.class_name} in {config.resolve(spec.path)}")
        elif not (spec.url or "").startswith(("http://", "https://")):
            problems.append(f"{where}.checker.url: an eno checker needs an http(s):// URL, not {spec.url!r}")
        if service.challenge and not config.resolve(service.challenge).is_dir():
            problems.append(f"{where}.challenge: no such folder: {config.resolve(service.challenge)}")
        elif config.deploy.hosts_boxes and service.enabled:
            if not service.challenge:
                problems.append(f"{where}.challenge: hosted mode needs the challenge folder")
            elif not (config.resolve(service.challenge) / "service" / "Dockerfile").is_file():
                problems.append(f"{where}.challenge: no service/Dockerfile in {config.resolve(service.challenge)}")
    return [_note_message(problem, config._origins) for problem in problems]


def load_config(path: str | Path) -> GameConfig:
    """Read and validate a game file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(path), path.parent.resolve())
