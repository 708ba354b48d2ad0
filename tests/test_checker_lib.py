"""checker.lib against real loopback services: HTTP and line helpers, assertions, random data, main()."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checker.lib import (
    Checker,
    CheckerError,
    Corrupt,
    Down,
    Mumble,
    Status,
    StatusError,
    rand_password,
    rand_string,
    rand_text,
    rand_user,
)
from tests.targets.http_target import HttpTarget
from tests.targets.notes_tcp import PORT, serving_notes

ROOT = Path(__file__).resolve().parents[1]
CHECKERS = Path(__file__).parent / "targets" / "checkers"
HOST = "127.0.5.5"
HTTP_PORT = 17303


@pytest.fixture
def web():
    target = HttpTarget(HOST, HTTP_PORT).start()
    yield target
    target.stop()


def test_exceptions_carry_status_and_both_messages():
    for cls, status in [(Mumble, Status.MUMBLE), (Corrupt, Status.CORRUPT), (Down, Status.DOWN),
                        (CheckerError, Status.CHECKER_ERROR)]:
        exc = cls("public text", "private text")
        assert isinstance(exc, StatusError)
        assert (exc.status, exc.public, exc.private) == (status, "public text", "private text")
    assert Mumble("only public").private == ""


def test_http_joins_relative_urls_and_maps_failures_to_verdicts(web):
    session = Checker(HOST, timeout=1).http(HTTP_PORT)
    assert session.get("/ok").json() == {"hello": "world"}
    with pytest.raises(Mumble) as boom:
        session.get("/boom")
    assert boom.value.public == "HTTP 500"
    with pytest.raises(Mumble):
        session.json_of(session.get("/text"))
    with pytest.raises(Down):
        session.get("/slow")
    web.stop()
    with pytest.raises(Down):
        session.get("/ok")


def test_line_socket_reads_lines_and_maps_failures_to_verdicts():
    checker = Checker(HOST, timeout=1)
    with serving_notes(HOST) as notes:
        with checker.connect(PORT) as conn:
            conn.send_line("PING")
            assert conn.recv_line() == "PONG"
            conn.send_line("PUT hello")
            assert conn.recv_until(b" ") == b"ID "
        notes.mode = "silent"
        with checker.connect(PORT) as conn, pytest.raises(Down):
            conn.send_line("PING")
            conn.recv_line()
    with pytest.raises(Down):
        checker.connect(PORT)


def test_assertions_raise_the_chosen_status_with_a_useful_private_message():
    checker = Checker(HOST)
    checker.assert_eq(1, 1, "same")
    with pytest.raises(Mumble) as eq:
        checker.assert_eq("a", "b", "differs")
    assert eq.value.private == "expected 'b', got 'a'"
    with pytest.raises(Corrupt):
        checker.assert_in("flag", "no such thing", "flag lost", status=Status.CORRUPT)
    with pytest.raises(Down):
        checker.assert_true(False, "nope", status=Status.DOWN)


def test_random_data_looks_innocent_and_varies():
    assert re.fullmatch(r"[A-Za-z0-9]{12}", rand_string())
    assert re.fullmatch(r"[a-z]+_[a-z]+\d+", rand_user())
    assert 12 <= len(rand_password()) <= 20
    assert rand_text().endswith(".") and " " in rand_text(5)
    assert len({rand_user() for _ in range(20)}) > 15


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, str(CHECKERS / args[0]), *args[1:]], capture_output=True,
                          text=True, env=env, timeout=30)


def test_main_prints_info_as_hackerdom_lines_or_json():
    lines = _cli("notes_checker.py", "info")
    assert lines.returncode == 101
    assert lines.stdout.splitlines()[0] == "vulns: 1:2"
    as_json = _cli("notes_checker.py", "info", "--json")
    assert json.loads(as_json.stdout) == {"vulns": [1, 2], "timeout": 5, "attack_data": True}


def test_main_put_prints_the_new_flag_id_and_exit_codes_follow_the_status():
    with serving_notes(HOST) as notes:
        put = _cli("notes_checker.py", "put", HOST, "seed", "FLAG1=", "2")
        assert put.returncode == 101
        note = json.loads(put.stdout)["note"]
        assert notes.notes[note] == "FLAG1="
        notes.forget(note)
        lost = _cli("notes_checker.py", "get", HOST, put.stdout.strip(), "FLAG1=", "2")
        assert (lost.returncode, lost.stdout.strip()) == (102, "flag is missing")
    down = _cli("notes_checker.py", "check", HOST)
    assert down.returncode == 104 and "Connection refused" in down.stderr


def test_main_reports_uncaught_exceptions_and_bad_arguments_as_checker_error():
    crash = _cli("buggy_checker.py", "check", HOST)
    assert crash.returncode == 110 and "ZeroDivisionError" in crash.stderr
    usage = _cli("notes_checker.py", "put", HOST)
    assert usage.returncode == 110 and "usage:" in usage.stderr
