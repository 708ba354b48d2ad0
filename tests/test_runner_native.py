"""The native protocol: checker.lib classes run inside the worker against a real notes service."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from checker.runner import CheckerInfoError, checker_info, run_action
from checker.runner.native import load_checker_class
from scoreboard.config import CheckerSpec
from scoreboard.types import Status
from tests.targets.notes_tcp import serving_notes

CHECKERS = Path(__file__).parent / "targets" / "checkers"
HOST = "127.0.5.2"
FLAG = "B" * 31 + "="


def native(name: str, timeout: float = 5, class_name: str | None = None) -> CheckerSpec:
    return CheckerSpec.model_validate(
        {"protocol": "native", "path": str(CHECKERS / name), "timeout": timeout, "class": class_name}
    )


@pytest.fixture
def notes():
    with serving_notes(HOST) as server:
        yield server


def test_put_then_get_round_trips_the_flag_and_check_passes(notes):
    spec = native("notes_checker.py")
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 1)
    assert put.status == Status.OK and notes.notes[put.flag_id] == FLAG
    assert put.public_flag_id is None
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.OK
    assert run_action(spec, None, "check", HOST).status == Status.OK
    assert put.command.endswith(":NotesChecker")


def test_put_returning_a_dict_stores_json_and_publishes_public_flag_id(notes):
    put = run_action(native("notes_checker.py"), None, "put", HOST, "seed", FLAG, 2)
    assert json.loads(put.flag_id)["note"][:4] == put.public_flag_id


def test_every_status_comes_from_real_service_behaviour(notes):
    spec = native("notes_checker.py")
    put = run_action(spec, None, "put", HOST, "seed", FLAG, 1)
    notes.forget(put.flag_id)
    assert run_action(spec, None, "get", HOST, put.flag_id, FLAG, 1).status == Status.CORRUPT
    notes.mode = "liar"
    mumble = run_action(spec, None, "check", HOST)
    assert (mumble.status, mumble.public) == (Status.MUMBLE, "ping does not work")
    assert "'PANG'" in mumble.private
    notes.mode = "silent"
    silent = run_action(spec, None, "check", HOST, timeout=1)
    assert silent.status == Status.DOWN
    notes.stop()
    assert run_action(spec, None, "check", HOST).status == Status.DOWN


def test_checker_exception_is_checker_error_with_traceback():
    result = run_action(native("buggy_checker.py"), None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR
    assert "ZeroDivisionError" in result.private


def test_hanging_checker_is_stopped_at_its_timeout_even_if_it_catches_exceptions():
    started = time.monotonic()
    result = run_action(native("buggy_checker.py"), None, "put", HOST, "x", FLAG, 1, timeout=0.5)
    assert (result.status, result.public) == (Status.DOWN, "checker did not finish in 0.5s")
    assert time.monotonic() - started < 2


def test_timeout_off_the_main_thread_still_reports_down_in_time(notes):
    notes.mode = "silent"
    box = {}
    spec = native("notes_checker.py")
    thread = threading.Thread(target=lambda: box.update(r=run_action(spec, None, "check", HOST, timeout=0.5)))
    started = time.monotonic()
    thread.start()
    thread.join(5)
    assert box["r"].status == Status.DOWN
    assert time.monotonic() - started < 2


def test_unknown_flag_store_is_checker_error(notes):
    result = run_action(native("notes_checker.py"), None, "put", HOST, "seed", FLAG, 3)
    assert result.status == Status.CHECKER_ERROR


def test_file_without_a_checker_class_is_checker_error_and_info_error(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    spec = CheckerSpec(protocol="native", path=str(empty))
    result = run_action(spec, None, "check", HOST)
    assert result.status == Status.CHECKER_ERROR and "expected one Checker subclass" in result.private
    with pytest.raises(CheckerInfoError):
        checker_info(spec)


def test_class_is_cached_until_the_file_changes(tmp_path):
    copy = tmp_path / "notes_checker.py"
    shutil.copy(CHECKERS / "notes_checker.py", copy)
    first = load_checker_class(copy)
    assert load_checker_class(copy) is first
    copy.write_text(copy.read_text().replace("timeout = 5", "timeout = 6"))
    later = time.time() + 5
    os.utime(copy, (later, later))
    reloaded = load_checker_class(copy)
    assert reloaded is not first and reloaded.timeout == 6


def test_info_comes_from_class_attributes_and_named_class_is_used():
    info = checker_info(native("notes_checker.py", class_name="NotesChecker"))
    assert (info.vulns, info.timeout, info.attack_data) == ([1, 2], 5, True)


def test_checker_that_takes_its_own_folder_off_sys_path_still_loads(tmp_path):
    path = tmp_path / "checker.py"
    path.write_text(
        "import sys\n"
        f"sys.path[:] = [p for p in sys.path if p != {str(tmp_path)!r}]\n"
        "from checker.lib import Checker\n\n\n"
        "class Quiet(Checker):\n    vulns = [2]\n"
    )
    assert checker_info(CheckerSpec(protocol="native", path=str(path))).vulns == [2]
