"""The CLI checker protocol against a real notes service on loopback, with real child processes."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import pytest

from checker.runner import checker_info, parse_info, run_action
from checker.runner.base import MESSAGE_LIMIT
from checker.runner.process import OUTPUT_CAP, run_process
from scoreboard.config import CheckerSpec
from scoreboard.types import Status
from tests.targets.notes_tcp import serving_notes
from tests.targets.procs import is_alive

CHECKERS = Path(__file__).parent / "targets" / "checkers"
HOST = "127.0.5.1"
FLAG = "A" * 31 + "="


def cli(name: str, timeout: float = 10) -> CheckerSpec:
    return CheckerSpec(protocol="cli", path=str(CHECKERS / name), timeout=timeout)


@pytest.fixture
def notes():
    with serving_notes(HOST) as server:
        yield server


# -- a checker.lib checker file used as a CLI checker ------------------------------------
def test_native_checker_file_runs_as_cli_checker_through_put_and_get(notes):
    spec = cli("notes_checker.py")
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 1)
    assert put.status == Status.OK, put
    assert put.flag_id in notes.notes and notes.notes[put.flag_id] == FLAG
    got = run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1)
    assert got.status == Status.OK, got
    assert run_action(spec, None, "check", HOST).status == Status.OK


def test_put_printing_json_publishes_its_public_flag_id(notes):
    spec = cli("notes_checker.py")
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 2)
    assert put.status == Status.OK, put
    note = json.loads(put.flag_id)["note"]
    assert put.public_flag_id == note[:4]
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 2).status == Status.OK


def test_stopped_service_is_down_and_lying_service_is_mumble(notes):
    spec = cli("notes_checker.py")
    notes.mode = "liar"
    mumble = run_action(spec, None, "check", HOST)
    assert (mumble.status, mumble.public) == (Status.MUMBLE, "ping does not work")
    notes.stop()
    down = run_action(spec, None, "check", HOST)
    assert down.status == Status.DOWN
    assert "Connection refused" in down.private


def test_deleted_flag_is_corrupt(notes):
    spec = cli("notes_checker.py")
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 1)
    notes.forget(put.flag_id)
    got = run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1)
    assert (got.status, got.public) == (Status.CORRUPT, "flag is missing")


def test_checker_exception_is_checker_error_with_traceback_in_private():
    result = run_action(cli("buggy_checker.py"), None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR
    assert "ZeroDivisionError" in result.private and "Traceback" in result.private


def test_exit_code_that_is_no_status_is_checker_error():
    result = run_action(cli("odd_exit.sh"), None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR
    assert "exit code 3" in result.private


# -- a ForcAD-style checker: own argv parsing, no timeouts of its own --------------------
def test_forcad_style_checker_runs_unmodified(notes):
    spec = cli("forcad_style.py")
    put = run_action(spec, None, "put", HOST, "ignored", FLAG, 1)
    assert put.status == Status.OK, put
    assert notes.notes[put.flag_id] == FLAG
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.OK
    notes.forget(put.flag_id)
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.CORRUPT


def test_checker_hanging_on_a_silent_service_is_down_after_its_timeout(notes):
    notes.mode = "silent"
    started = time.monotonic()
    result = run_action(cli("forcad_style.py", timeout=1.5), None, "check", HOST)
    assert result.status == Status.DOWN
    assert result.public == "checker did not finish in 1.5s"
    assert time.monotonic() - started < 4


def test_hanging_checker_is_killed_with_its_process_group_and_reports_down():
    result = run_action(cli("hang_forker.sh", timeout=1), None, "check", HOST)
    assert result.status == Status.DOWN
    pids = {name: int(pid) for name, pid in re.findall(r"(child|orphan|self) (\d+)", result.private)}
    assert set(pids) == {"child", "orphan", "self"}, result.private
    deadline = time.monotonic() + 2
    while any(is_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(is_alive(pid) for pid in pids.values())


def test_output_flood_is_capped_without_blocking_the_checker():
    started = time.monotonic()
    result = run_action(cli("flood.sh", timeout=20), None, "check", HOST)
    assert result.status == Status.OK
    assert time.monotonic() - started < 15
    assert result.public.startswith("aaaa") and len(result.public) <= MESSAGE_LIMIT
    assert result.private.endswith("bbbb") and len(result.private) <= MESSAGE_LIMIT


def test_a_long_traceback_keeps_its_last_line_the_one_that_names_the_error():
    result = run_action(cli("long_traceback.py"), None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR  # exit 1 is outside the protocol
    assert result.private.rstrip().endswith("ValueError: the real cause is named on the last line")
    assert len(result.private) <= MESSAGE_LIMIT and result.private.startswith("[truncated]")


# -- HackerDom gornilo, from PyPI ---------------------------------------------------------
def test_gornilo_checker_runs_unmodified_and_publishes_its_flag_id(notes):
    pytest.importorskip("gornilo")
    spec = cli("gornilo_checker.py")
    assert run_action(spec, None, "check", HOST).status == Status.OK
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 1)
    assert put.status == Status.OK, put
    note = json.loads(json.loads(put.flag_id)["private_content"])["note"]
    assert put.public_flag_id == note[:4]
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.OK
    notes.forget(note)
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.CORRUPT


def test_gornilo_info_is_read_from_its_lines():
    pytest.importorskip("gornilo")
    info = checker_info(cli("gornilo_checker.py"))
    assert info.vulns == [1] and info.attack_data


# -- info -------------------------------------------------------------------------------
def test_info_of_a_checker_lib_file_and_of_a_json_printing_checker():
    lines = checker_info(cli("notes_checker.py"))
    assert (lines.vulns, lines.timeout, lines.attack_data) == ([1, 2], 5, True)
    as_json = checker_info(cli("info_json.sh"))
    assert (as_json.vulns, as_json.timeout, as_json.attack_data) == ([1, 3], 7, False)


def test_info_parsing_accepts_hackerdom_lines_and_json():
    hackerdom = parse_info("vulns: 1:2:1\npublic_flag_description: user name\n")
    assert hackerdom.vulns == [1, 2, 1] and hackerdom.attack_data and hackerdom.timeout is None
    assert parse_info('{"vulns": 3}').vulns == [1, 1, 1]
    assert parse_info("vulns: 1\nattack_data: false").attack_data is False


# -- process environment and privileges ---------------------------------------------------
def test_checker_runs_as_nobody_in_its_folder_with_a_clean_environment(monkeypatch):
    monkeypatch.setenv("ADRANGE_TEST_SECRET", "leaked")
    result = run_action(cli("whoami.sh"), None, "check", HOST)
    assert result.status == Status.OK
    fields = dict(item.split("=", 1) for item in result.public.split())
    assert fields["cwd"] == str(CHECKERS.resolve())
    assert fields["secret"] == "unset"
    assert fields["home"] != os.environ.get("HOME")
    if os.geteuid() == 0:
        assert fields["uid"] == "65534"
        assert "(as nobody)" in result.command


@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are dropped only when the worker is root")
def test_checker_whose_interpreter_nobody_cannot_run_falls_back_to_root_and_says_so(caplog):
    caplog.set_level(logging.WARNING)
    result = run_action(cli("buggy_checker.py"), None, "check", HOST)
    if "as nobody" in result.command:
        pytest.skip("the venv interpreter is usable by nobody here")
    assert "as root: nobody cannot use" in result.command
    assert any("as root" in record.getMessage() for record in caplog.records)


def test_process_keeps_only_the_first_64_kib_of_each_stream():
    out = run_process([str(CHECKERS / "flood.sh")], str(CHECKERS), {"PATH": "/usr/bin:/bin"}, timeout=20)
    assert out.returncode == 101 and not out.timed_out
    assert len(out.stdout) == OUTPUT_CAP and len(out.stderr) == OUTPUT_CAP


def test_checker_that_eats_memory_fails_alone_as_checker_error():
    result = run_action(cli("memory_hog.sh"), None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR, result
    assert "MemoryError" in result.private
