"""ENO checker protocol v2: POST a task to an ENOWARS-style checker service, read its verdict.

Mapping: put → ``putflag``, get → ``getflag``, check → ``havoc`` then ``putnoise`` and
``getnoise`` (each only when the service's ``GET /service`` announces variants of that kind).
Results OK/MUMBLE/OFFLINE/INTERNAL_ERROR become OK/MUMBLE/DOWN/CHECKER_ERROR. A checker
service that cannot be reached or answers nonsense is CHECKER_ERROR (the organizers' fault);
one that does not answer in time is DOWN, as it most likely hangs on a silent target.

ENO checkers keep their own state keyed by ``taskChainId``; a put returns that chain id as
the flag id so the matching get finds the same state, and ``attackInfo`` becomes the
public flag id. `ActionRequest.context` may carry ``round``, ``related_round``,
``team_id``, ``team_name``, ``service_id``, ``round_length`` (s) and ``task_id``.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import requests

from scoreboard.types import Status

from .base import ActionRequest, ActionResult, CheckerInfo, CheckerInfoError

RESULTS = {
    "OK": Status.OK,
    "MUMBLE": Status.MUMBLE,
    "OFFLINE": Status.DOWN,
    "INTERNAL_ERROR": Status.CHECKER_ERROR,
}
# Extra seconds the HTTP call may take beyond the task's timeout (the service's own overhead).
GRACE = 2.0

_info_cache: dict[str, dict[str, Any]] = {}
_info_lock = threading.Lock()


class _Failed(Exception):
    def __init__(self, status: Status, public: str, private: str = "") -> None:
        super().__init__(public)
        self.status, self.public, self.private = status, public, private


def run_eno_action(url: str, request: ActionRequest) -> ActionResult:
    """Run one action against the ENO checker service at `url`."""
    started = time.monotonic()
    deadline = started + request.timeout
    result = ActionResult(request.action, Status.OK, command=f"POST {url}")
    try:
        if request.action == "put":
            chain = _chain_id("flag", request)
            answer = _task(url, request, "putflag", chain, request.vuln - 1, deadline)
            result.flag_id = chain
            attack = answer.get("attackInfo")
            result.public_flag_id = str(attack) if attack not in (None, "") else None
        elif request.action == "get":
            chain = request.flag_id or _chain_id("flag", request)
            _task(url, request, "getflag", chain, request.vuln - 1, deadline)
        else:
            _check(url, request, deadline)
    except _Failed as failure:
        result.status, result.public, result.private = failure.status, failure.public, failure.private
    result.duration = time.monotonic() - started
    return result


def eno_info(url: str, timeout: float = 10) -> CheckerInfo:
    """Ask ``GET /service``: one vuln (weight 1) per flag variant."""
    try:
        info = _service_info(url, timeout)
    except _Failed as failure:
        raise CheckerInfoError(f"{failure.public}: {failure.private}") from None
    return CheckerInfo(vulns=[1] * int(info.get("flagVariants", 1)), timeout=None, attack_data=True)


def _check(url: str, request: ActionRequest, deadline: float) -> None:
    info = _service_info(url, max(0.5, deadline - time.monotonic()))
    round_id = int(request.context.get("round", 0))
    havoc = int(info.get("havocVariants", 0))
    noise = int(info.get("noiseVariants", 0))
    if havoc:
        variant = round_id % havoc
        _task(url, request, "havoc", _chain_id("havoc", request, variant), variant, deadline)
    if noise:
        variant = round_id % noise
        chain = _chain_id("noise", request, variant)
        _task(url, request, "putnoise", chain, variant, deadline)
        _task(url, request, "getnoise", chain, variant, deadline)


def _task(
    url: str, request: ActionRequest, method: str, chain: str, variant: int, deadline: float
) -> dict[str, Any]:
    ctx = request.context
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Failed(Status.DOWN, f"checker did not finish in {request.timeout:g}s", f"before {method}")
    round_id = int(ctx.get("round", 0))
    body = {
        "taskId": int(ctx.get("task_id") or random.getrandbits(62)),
        "method": method,
        "address": request.host,
        "teamId": int(ctx.get("team_id", 0)),
        "teamName": str(ctx.get("team_name", "")),
        "currentRoundId": round_id,
        "relatedRoundId": int(ctx.get("related_round", round_id)),
        "flag": request.flag if method in ("putflag", "getflag") else None,
        "variantId": variant,
        "timeout": int(remaining * 1000),
        "roundLength": int(float(ctx.get("round_length", 60)) * 1000),
        "taskChainId": chain,
        "flagRegex": None,
        "flagHash": None,
        "attackInfo": None,
    }
    try:
        response = requests.post(url, json=body, timeout=remaining + GRACE)
    except requests.Timeout:
        raise _Failed(
            Status.DOWN, f"checker did not finish in {request.timeout:g}s", f"{method} to {url} timed out"
        ) from None
    except requests.RequestException as exc:
        raise _Failed(Status.CHECKER_ERROR, "checker unavailable", f"{method} to {url}: {exc}") from None
    answer = _json(response, method, url)
    status = RESULTS.get(str(answer.get("result")), Status.CHECKER_ERROR)
    if status != Status.OK:
        message = str(answer.get("message") or "")
        raise _Failed(status, message, f"{method} ({chain}): {answer}")
    return answer


def _service_info(url: str, timeout: float) -> dict[str, Any]:
    base = url.rstrip("/")
    with _info_lock:
        if base in _info_cache:
            return _info_cache[base]
    try:
        response = requests.get(f"{base}/service", timeout=timeout)
    except requests.RequestException as exc:
        raise _Failed(Status.CHECKER_ERROR, "checker unavailable", f"GET {base}/service: {exc}") from None
    info = _json(response, "service info", base)
    with _info_lock:
        _info_cache[base] = info
    return info


def _json(response: requests.Response, what: str, url: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise _Failed(
            Status.CHECKER_ERROR, "checker failed",
            f"{what} to {url}: HTTP {response.status_code} {response.text[:300]!r}",
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _Failed(Status.CHECKER_ERROR, "checker failed", f"{what} to {url}: not a JSON object")
    return data


def _chain_id(kind: str, request: ActionRequest, variant: int | None = None) -> str:
    """EnoEngine's chain id shape: ``flag_s{service}_r{related round}_t{team}_i{variant}``."""
    ctx = request.context
    related = ctx.get("related_round", ctx.get("round", 0))
    index = request.vuln - 1 if variant is None else variant
    return f"{kind}_s{ctx.get('service_id', 0)}_r{related}_t{ctx.get('team_id', 0)}_i{index}"
