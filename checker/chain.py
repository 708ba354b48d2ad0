"""One box's checks for one round: CHECK, PUT this round's flag, GET it and older flags.

`run_chain` does the I/O (checker runner, store reads, AWD flag files); `combine` and
`pick_vuln` are the pure rules. The chain stops at the first failing current action
(a dead service gets no flag). The round's status is that failure; with all current
actions OK, a lost older flag gives RECOVERING. A checker bug is CHECKER_ERROR.
Every action gets the service's whole timeout or is not started (`round_plan.can_start`):
a current action not started makes the round "not checked" (CHECKER_ERROR, which costs
nothing); an older GET not started, or one that failed on our side, is left out.

Flags: one per round per box, its vuln drawn by the service's `vulns` weights; the slot
is ``vuln - 1``, so the flag itself (and its stored record) says which store it is in.
AWD file mode (``flag_mode: file``): the flag is written into the box by
`deploy.flagfile.write_flag` and the checker only runs CHECK.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from checker.round_plan import OLD_GETS, can_start
from checker.runner import ActionResult, run_service_action
from scoreboard.config import GameConfig
from scoreboard.flags import FlagCodec
from scoreboard.store import GameStore
from scoreboard.types import Round, ServiceID, Status, TeamID

# Worst last: the status of several results is the one ranked highest here.
SEVERITY = (Status.OK, Status.RECOVERING, Status.CHECKER_ERROR, Status.CORRUPT, Status.MUMBLE, Status.DOWN)
# Public text of a round the platform could not judge: never blames the team.
NOT_CHECKED = "not checked this round (platform)"


@dataclass
class ChainResult:
    """A box's verdict for a round, with each action's detail for the organizers."""

    status: Status
    public: str = ""
    private: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    skipped: int = 0  # actions not started: no time left for their whole timeout

    def detail(self) -> dict[str, Any]:
        """The per-action detail and total duration, as stored with the check."""
        return {"actions": self.actions, "duration": round(self.duration, 4), "skipped": self.skipped}


def worst(statuses: list[Status]) -> Status:
    """The most severe of `statuses` (OK for none)."""
    return max(statuses, key=SEVERITY.index, default=Status.OK)


def combine(current: list[Status], older: list[Status]) -> Status:
    """A round's status: the worst current action; if all are OK, RECOVERING for an older
    flag the target lost (an older GET that failed on our side, CHECKER_ERROR, is left out:
    it says nothing about the target)."""
    now = worst(current)
    if now != Status.OK:
        return now
    lost = [s for s in older if s not in (Status.OK, Status.CHECKER_ERROR)]
    return Status.RECOVERING if lost else Status.OK


def pick_vuln(weights: list[int], rng: random.Random) -> int:
    """A flag store (1-based) drawn by `weights`."""
    return rng.choices(range(1, len(weights) + 1), weights=weights)[0]


def place_flag_file(config: GameConfig, team: TeamID, service: ServiceID, flag: str) -> str | None:
    """Write `flag` into the box's flag file (AWD mode); None when done, else why not."""
    try:
        from deploy.flagfile import write_flag
    except ImportError as exc:
        return f"deploy is not available on this worker: {exc}"
    try:
        write_flag(config, team, service, flag)
    except Exception as exc:  # DeployError, Docker trouble: never the team's fault
        return f"{type(exc).__name__}: {exc}"
    return None


class _Chain:
    """The actions of one chain, each limited by its own timeout and the chain's deadline."""

    def __init__(self, config: GameConfig, round_: Round, team: TeamID, service: ServiceID,
                 deadline: float) -> None:
        self.config = config
        self.round = round_
        self.team = config.team(team)
        self.service = config.service(service)
        self.deadline = deadline
        self.results: list[ActionResult] = []
        self.skipped = 0

    def fits(self) -> bool:
        """True when one more action can have its whole timeout before the deadline."""
        return can_start(self.service.checker.timeout, time.time(), self.deadline)

    def run(self, action: str, flag_id: str = "", flag: str = "", vuln: int = 1,
            related: Round | None = None) -> ActionResult:
        timeout = self.service.checker.timeout
        if not self.fits():
            self.skipped += 1
            left = self.deadline - time.time()
            result = ActionResult(action, Status.CHECKER_ERROR, NOT_CHECKED,
                                  f"{action} not started: {left:.2f}s left before the deadline, "
                                  f"it needs its whole {timeout:g}s timeout")
        else:
            context = {"round": self.round, "related_round": related or self.round, "team_id": self.team.id,
                       "team_name": self.team.name, "service_id": self.service.id,
                       "round_length": self.config.game.round_seconds}
            assert self.team.address is not None
            result = run_service_action(self.config, self.service, action, self.team.address,  # type: ignore[arg-type]
                                        flag_id=flag_id, flag=flag, vuln=vuln, timeout=timeout, context=context)
        self.results.append(result)
        return result

    def detail(self, result: ActionResult, **extra: Any) -> dict[str, Any]:
        return {"action": result.action, "status": result.status.name, "duration": round(result.duration, 4),
                "command": result.command, **extra}


def run_chain(config: GameConfig, store: GameStore, round_: Round, team: TeamID, service: ServiceID,
              deadline: float, rng: random.Random | None = None) -> ChainResult:
    """Run one box's chain for `round_`, finishing by `deadline` (epoch seconds)."""
    rng = rng or random.Random()
    started = time.monotonic()
    chain = _Chain(config, round_, team, service, deadline)
    spec = chain.service
    current: list[tuple[ActionResult, dict[str, Any]]] = []
    older: list[tuple[ActionResult, dict[str, Any]]] = []
    notes: list[str] = []

    check = chain.run("check")
    current.append((check, {}))
    if check.status == Status.OK:
        vuln = pick_vuln(spec.vulns, rng)
        flag = FlagCodec(config.game.secret, config.game.flag_prefix).generate(round_, team, service, vuln - 1)
        if spec.flag_mode == "file":
            problem = place_flag_file(config, team, service, flag)
            if problem:
                notes.append(f"flag file not written: {problem}")
            else:
                store.record_flag(round_, team, service, vuln - 1, flag, "", None)
        else:
            put = chain.run("put", _seed_flag_id(rng), flag, vuln)
            current.append((put, {"vuln": vuln}))
            if put.status == Status.OK:
                flag_id = put.flag_id or ""
                store.record_flag(round_, team, service, vuln - 1, flag, flag_id, put.public_flag_id)
                get = chain.run("get", flag_id, flag, vuln)
                current.append((get, {"vuln": vuln}))
                if get.status == Status.OK:
                    older = _get_older(chain, store, rng)

    statuses = [r.status for r, _ in current]
    if notes:
        statuses.append(Status.CHECKER_ERROR)
    voided = _judged_unfairly(current, spec.flag_mode, chain)
    if voided:
        chain.skipped += 1
        notes.append(f"{current[-1][0].action} failed when the next action would not have had its whole "
                     "timeout: a success would not have been judged either")
        statuses = [Status.CHECKER_ERROR]
    status = combine(statuses, [r.status for r, _ in older])
    public, private = _messages(status, current, older, notes)
    if voided:
        public = NOT_CHECKED
    actions = [chain.detail(r, **extra) for r, extra in current + older]
    return ChainResult(status, public, private, actions, time.monotonic() - started, chain.skipped)


def _judged_unfairly(current: list[tuple[ActionResult, dict[str, Any]]], flag_mode: str, chain: _Chain) -> bool:
    """True when a CHECK or PUT failed at a moment the next action could not have started:
    had it succeeded, the round would have gone unchecked, so judging only its failure
    would weigh a late chain against the team. Decided the same way either outcome."""
    last = current[-1][0]
    more_to_come = {"check": flag_mode != "file", "put": True}.get(last.action, False)
    return last.status not in (Status.OK, Status.CHECKER_ERROR) and more_to_come and not chain.fits()


def _get_older(chain: _Chain, store: GameStore, rng: random.Random) -> list[tuple[ActionResult, dict[str, Any]]]:
    """GET up to `OLD_GETS` random still-valid flags of earlier rounds."""
    lifetime = chain.config.game.flag_lifetime
    rounds = list(range(max(1, chain.round - lifetime + 1), chain.round))
    placed = store.box_flags(rounds, chain.team.id, chain.service.id, len(chain.service.vulns))  # type: ignore[arg-type]
    picks = rng.sample(sorted(placed), min(OLD_GETS, len(placed)))
    out = []
    for round_, slot in picks:
        if not chain.fits():  # no time left for a whole GET: the older flags are not checked
            chain.skipped += 1
            break
        record = placed[(round_, slot)]
        result = chain.run("get", record["flag_id"], record["flag"], slot + 1, related=round_)
        out.append((result, {"vuln": slot + 1, "round": round_}))
    return out


def _messages(status: Status, current: list[tuple[ActionResult, dict[str, Any]]],
              older: list[tuple[ActionResult, dict[str, Any]]], notes: list[str]) -> tuple[str, str]:
    """Public and private messages: the failing action's, with what failed named privately."""
    private = [f"{r.action}: {r.private}" for r, _ in current + older if r.private] + notes
    failing = [r for r, _ in current if r.status != Status.OK]
    if status == Status.CHECKER_ERROR:
        public = NOT_CHECKED if not failing or failing[0].public == NOT_CHECKED else "checker error (platform)"
    elif failing:
        public = failing[0].public or failing[0].status.name.lower()
    elif status == Status.RECOVERING:
        lost = next(r for r, _ in older if r.status not in (Status.OK, Status.CHECKER_ERROR))
        public = f"an older flag is lost: {lost.public}".rstrip(": ")
    else:
        public = ""
    return public, "\n".join(private)


def _seed_flag_id(rng: random.Random) -> str:
    """The flag id handed to put (checkers may keep it or return their own)."""
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=12))
