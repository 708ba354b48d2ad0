"""The ENO checker-API v2 protocol against a real ENO-style checker service and notes store."""

from __future__ import annotations

import pytest

from checker.runner import CheckerInfoError, checker_info, run_action
from scoreboard.config import CheckerSpec
from scoreboard.types import Status
from tests.targets.eno_service import EnoService
from tests.targets.notes_tcp import serving_notes

HOST = "127.0.5.3"
ENO_HOST, ENO_PORT = "127.0.5.4", 17302
FLAG = "C" * 31 + "="
CONTEXT = {"round": 4, "team_id": 3, "team_name": "blue", "service_id": 2, "round_length": 60}
SPEC = CheckerSpec(protocol="eno", url=f"http://{ENO_HOST}:{ENO_PORT}/", timeout=3)


@pytest.fixture
def notes():
    with serving_notes(HOST) as server:
        yield server


@pytest.fixture
def eno():
    service = EnoService(ENO_HOST, ENO_PORT).start()
    yield service
    service.stop()


def test_putflag_and_getflag_share_the_task_chain_and_publish_attack_info(notes, eno):
    put = run_action(SPEC, None, "put", HOST, "", FLAG, 1, context=CONTEXT)
    assert put.status == Status.OK, put
    assert put.flag_id == "flag_s2_r4_t3_i0"
    note_id = eno.chains[put.flag_id]
    assert put.public_flag_id == f"note {note_id[:4]}"
    got = run_action(SPEC, None, "get", HOST, put.flag_id, FLAG, 1, context={**CONTEXT, "round": 6})
    assert got.status == Status.OK, got
    task = eno.tasks[0]
    assert task["method"] == "putflag" and task["variantId"] == 0 and task["address"] == HOST
    assert (task["teamId"], task["teamName"], task["currentRoundId"], task["relatedRoundId"]) == (3, "blue", 4, 4)
    assert 0 < task["timeout"] <= 3000 and task["roundLength"] == 60000 and task["flag"] == FLAG


def test_check_runs_havoc_then_noise(notes, eno):
    result = run_action(SPEC, None, "check", HOST, context=CONTEXT)
    assert result.status == Status.OK, result
    assert [t["method"] for t in eno.tasks] == ["havoc", "putnoise", "getnoise"]


def test_results_map_to_statuses(notes, eno):
    put = run_action(SPEC, None, "put", HOST, "", FLAG, 1, context=CONTEXT)
    notes.forget(eno.chains[put.flag_id])
    lost = run_action(SPEC, None, "get", HOST, put.flag_id, FLAG, 1, context=CONTEXT)
    assert (lost.status, lost.public) == (Status.MUMBLE, "flag not found")
    notes.stop()
    assert run_action(SPEC, None, "check", HOST, context=CONTEXT).status == Status.DOWN


def test_checker_service_that_does_not_answer_in_time_is_down(notes, eno):
    result = run_action(SPEC, None, "check", HOST, timeout=1, context={**CONTEXT, "round": 5})
    assert result.status == Status.DOWN
    assert result.public == "checker did not finish in 1s"


def test_unreachable_checker_service_is_checker_error(notes):
    result = run_action(SPEC, None, "put", HOST, "", FLAG, 1, context=CONTEXT)
    assert (result.status, result.public) == (Status.CHECKER_ERROR, "checker unavailable")
    with pytest.raises(CheckerInfoError):
        checker_info(CheckerSpec(protocol="eno", url="http://127.0.5.4:17399/"))


def test_info_counts_flag_variants(eno):
    assert checker_info(SPEC).vulns == [1]
