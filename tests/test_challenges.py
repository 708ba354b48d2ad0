"""The sample challenges, run for real on loopback: checkers, exploits, patches, failures.

Each test starts the challenge's service as a subprocess on an address of its own
(127.0.9.N, see `loopback`) with a fresh data folder, and stops it at the end.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from checker.lib.outcome import perform
from checker.runner.native import native_info
from scoreboard.config import Service
from scoreboard.types import Status
from tests.challenge_helpers import (
    CHALLENGES,
    Challenge,
    ServiceProcess,
    challenge,
    loopback,
    new_flag,
    patched_service,
    run_checker_cli,
    steal,
    steal_cli,
    wrong_service,
)

# What "tampering with the stored flags" means for each service: (database file, SQL with :flag).
TAMPER: dict[str, list[tuple[str, str]]] = {
    "notes": [("notes.db", "UPDATE notes SET content = 'lost' WHERE content = :flag"),
              ("notes.db", "UPDATE users SET secret = 'lost' WHERE secret = :flag")],
    "vault": [("vault.db", "UPDATE items SET value = 'lost' WHERE value = :flag"),
              ("vault.db", "DELETE FROM sealed")],
    "shop": [("catalog.db", "UPDATE orders SET comment = 'lost' WHERE comment = :flag"),
             ("accounts.db", "UPDATE users SET address = 'lost' WHERE address = :flag")],
}
VULNS = [(name, vuln) for name in CHALLENGES for vuln in range(1, len(challenge(name).vulns) + 1)]


@pytest.fixture(params=CHALLENGES)
def ch(request: pytest.FixtureRequest) -> Challenge:
    return challenge(request.param)


def flags_for(ch: Challenge) -> dict[int, str]:
    """One new flag per flag store; the second store gets the PREFIX{...} format."""
    return {vuln: new_flag("FLAG" if vuln == 2 else None) for vuln in range(1, len(ch.vulns) + 1)}


def put_all(ch: Challenge, svc: ServiceProcess, flags: dict[int, str]) -> tuple[dict[int, str], list[Any]]:
    """Put every flag with the native checker; return the flag ids and the public attack data."""
    if ch.file_mode:
        svc.flag_file.write_text(flags[1] + "\n")
    ids, attack_data = {}, []
    for vuln, flag in flags.items():
        outcome = perform(ch.checker_class(), "put", svc.host, "", flag, vuln)
        assert outcome.status == Status.OK, outcome
        ids[vuln] = outcome.flag_id or ""
        if outcome.public_flag_id is not None:
            attack_data.append(outcome.public_flag_id)
    return ids, attack_data


def verdicts(ch: Challenge, host: str, flags: dict[int, str], ids: dict[int, str]) -> list[Status]:
    """check, then get of every flag, with the native checker."""
    cls = ch.checker_class()
    return [perform(cls, "check", host).status] + [
        perform(cls, "get", host, ids[vuln], flag, vuln).status for vuln, flag in flags.items()
    ]


def start(ch: Challenge, slot: int, tmp_path: Path, service_dir: Path | None = None) -> ServiceProcess:
    svc = ServiceProcess(ch, loopback(slot, ch.name), tmp_path, service_dir)
    if ch.file_mode:
        svc.flag_file.write_text(new_flag() + "\n")
    return svc.start()


# -- files and metadata ------------------------------------------------------------------
def test_challenge_folder_is_complete_and_fits_the_game_file_model(ch: Challenge) -> None:
    spec = ch.spec
    service = Service.model_validate({k: spec[k] for k in ("name", "ports", "vulns", "flag_mode", "checker")}
                                     | ({"flag_file": spec["flag_file"]} if "flag_file" in spec else {}))
    assert service.name == ch.folder.name
    assert [doc["vuln"] for doc in spec["vuln_docs"]] == list(range(1, len(service.vulns) + 1))
    assert ch.checker_class().vulns == service.vulns
    assert native_info(ch.folder / spec["checker"]["path"], spec["checker"]["class"]).vulns == service.vulns
    dockerfile = (ch.folder / "service" / "Dockerfile").read_text().splitlines()
    assert dockerfile[:2] == ["ARG BASE=adrange/base:bookworm", "FROM ${BASE}"]
    assert f"EXPOSE {ch.port}" in dockerfile and "USER svc" in dockerfile
    assert (ch.folder / "service" / "run.sh").stat().st_mode & 0o111
    for vuln in range(1, len(service.vulns) + 1):
        assert (ch.folder / "patches" / f"vuln{vuln}.patch").is_file()
    assert (ch.folder / "patches" / "PATCH.md").is_file()


def test_sample_challenges_use_distinct_ports() -> None:
    ports = [challenge(name).port for name in CHALLENGES]
    assert len(set(ports)) == len(ports)
    assert all(yaml.safe_load((challenge(n).folder / "challenge.yml").read_text())["name"] == n for n in CHALLENGES)


# -- checkers ----------------------------------------------------------------------------
def test_native_checker_check_put_get_are_ok(ch: Challenge, tmp_path: Path) -> None:
    with start(ch, 0, tmp_path) as svc:
        flags = flags_for(ch)
        ids, attack_data = put_all(ch, svc, flags)
        assert verdicts(ch, svc.host, flags, ids) == [Status.OK] * (1 + len(flags))
        assert len(attack_data) == (0 if ch.file_mode else len(flags))


def test_checker_as_cli_exits_101_and_put_prints_the_flag_id(ch: Challenge, tmp_path: Path) -> None:
    with start(ch, 1, tmp_path) as svc:
        info = run_checker_cli(ch, "info")
        assert info.returncode == 101 and f"vulns: {':'.join(map(str, ch.vulns))}" in info.stdout
        assert run_checker_cli(ch, "check", svc.host).returncode == 101
        for vuln, flag in flags_for(ch).items():
            put = run_checker_cli(ch, "put", svc.host, "initial-id", flag, str(vuln))
            assert put.returncode == 101, put.stdout + put.stderr
            flag_id = put.stdout.strip()
            got = run_checker_cli(ch, "get", svc.host, flag_id, flag, str(vuln))
            assert got.returncode == 101, got.stdout + got.stderr


# -- exploits and patches ----------------------------------------------------------------
def test_exploit_steals_every_flag_the_checker_put(ch: Challenge, tmp_path: Path) -> None:
    with start(ch, 2, tmp_path) as svc:
        flags = flags_for(ch)
        _, attack_data = put_all(ch, svc, flags)
        assert set(steal(ch, svc.host, attack_data, svc.flag_file)) >= set(flags.values())
        assert set(steal_cli(ch, svc.host, attack_data, svc.flag_file)) >= set(flags.values())


def test_fully_patched_service_stops_the_exploit_and_stays_ok(ch: Challenge, tmp_path: Path) -> None:
    patched = patched_service(ch, tmp_path / "copy", list(range(1, len(ch.vulns) + 1)))
    with start(ch, 3, tmp_path, patched) as svc:
        flags = flags_for(ch)
        ids, attack_data = put_all(ch, svc, flags)
        assert steal(ch, svc.host, attack_data, svc.flag_file) == []
        assert verdicts(ch, svc.host, flags, ids) == [Status.OK] * (1 + len(flags))


@pytest.mark.parametrize(("name", "vuln"), VULNS, ids=[f"{n}-vuln{v}" for n, v in VULNS])
def test_each_patch_closes_its_own_flag_store_only(name: str, vuln: int, tmp_path: Path) -> None:
    ch = challenge(name)
    patched = patched_service(ch, tmp_path / "copy", [vuln])
    with start(ch, 4 + vuln, tmp_path, patched) as svc:
        flags = flags_for(ch)
        ids, attack_data = put_all(ch, svc, flags)
        stolen = set(steal(ch, svc.host, attack_data, svc.flag_file))
        assert flags[vuln] not in stolen
        assert {f for v, f in flags.items() if v != vuln} <= stolen
        assert verdicts(ch, svc.host, flags, ids) == [Status.OK] * (1 + len(flags))


# -- failures ----------------------------------------------------------------------------
def test_stopped_service_is_down(ch: Challenge, tmp_path: Path) -> None:
    svc = start(ch, 8, tmp_path)
    try:
        flags = flags_for(ch)
        ids, _ = put_all(ch, svc, flags)
    finally:
        svc.stop()
    cls = ch.checker_class()
    assert perform(cls, "check", svc.host).status == Status.DOWN
    assert perform(cls, "put", svc.host, "", flags[1], 1).status == Status.DOWN
    assert perform(cls, "get", svc.host, ids[1], flags[1], 1).status == Status.DOWN


def test_service_restarted_on_the_same_data_still_has_the_flags(ch: Challenge, tmp_path: Path) -> None:
    flags = flags_for(ch)
    with start(ch, 9, tmp_path) as svc:
        ids, _ = put_all(ch, svc, flags)
    with ServiceProcess(ch, svc.host, tmp_path) as again:
        assert verdicts(ch, again.host, flags, ids) == [Status.OK] * (1 + len(flags))


def test_something_else_on_the_port_is_mumble(ch: Challenge) -> None:
    host = loopback(10, ch.name)
    with wrong_service(host, ch.port):
        assert perform(ch.checker_class(), "check", host).status == Status.MUMBLE


@pytest.mark.parametrize("name", sorted(TAMPER))
def test_tampered_flags_are_corrupt(name: str, tmp_path: Path) -> None:
    ch = challenge(name)
    with start(ch, 11, tmp_path) as svc:
        flags = flags_for(ch)
        ids, _ = put_all(ch, svc, flags)
        for db_name, sql in TAMPER[name]:
            with sqlite3.connect(svc.data / db_name) as db:
                for flag in flags.values():
                    db.execute(sql, {"flag": flag})
        cls = ch.checker_class()
        assert perform(cls, "check", svc.host).status == Status.OK
        for vuln, flag in flags.items():
            assert perform(cls, "get", svc.host, ids[vuln], flag, vuln).status == Status.CORRUPT


def test_lost_flag_owner_account_is_corrupt(tmp_path: Path) -> None:
    ch = challenge("notes")
    with start(ch, 12, tmp_path) as svc:
        flags = flags_for(ch)
        ids, _ = put_all(ch, svc, flags)
        owner = json.loads(ids[1])["username"]
        with sqlite3.connect(svc.data / "notes.db") as db:
            db.execute("DELETE FROM users WHERE name = ?", (owner,))
        assert perform(ch.checker_class(), "get", svc.host, ids[1], flags[1], 1).status == Status.CORRUPT


def test_pinger_with_its_flag_file_removed_is_mumble(tmp_path: Path) -> None:
    ch = challenge("pinger")
    with start(ch, 13, tmp_path) as svc:
        assert perform(ch.checker_class(), "check", svc.host).status == Status.OK
        svc.flag_file.unlink()
        assert perform(ch.checker_class(), "check", svc.host).status == Status.MUMBLE
