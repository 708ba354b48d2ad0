"""Issue 12: `challenge.yml` is the single source of a challenge's name, ports, vulns, flag
mode and checker; a game file names `challenge:` and overrides what it must, key by key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.demo import challenge_services
from scoreboard.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p.parent for p in (ROOT / "challenges").glob("*/challenge.yml"))
NOTES = ROOT / "challenges" / "notes"


def game(services: list[dict[str, Any]], round_seconds: float = 60, mode: str = "external") -> dict[str, Any]:
    return {
        "game": {"name": "meta", "secret": "meta-tests-secret-0123456789", "round_seconds": round_seconds},
        "teams": [{"name": "one"}, {"name": "nop", "nop": True}],
        "services": services,
        "deploy": {"mode": mode},
    }


def write_game(folder: Path, services: list[dict[str, Any]], **kwargs: Any) -> Path:
    path = folder / "game.yml"
    path.write_text(yaml.safe_dump(game(services, **kwargs)))
    return path


def copy_notes(tmp_path: Path, edit=None) -> Path:
    """challenges/notes copied to tmp_path/chal/notes, its challenge.yml edited by `edit`."""
    folder = tmp_path / "chal" / "notes"
    shutil.copytree(NOTES, folder)
    if edit:
        meta = yaml.safe_load((folder / "challenge.yml").read_text())
        edit(meta)
        (folder / "challenge.yml").write_text(yaml.safe_dump(meta))
    return folder


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_short_form_takes_name_ports_vulns_flag_mode_and_checker_from_challenge_yml(tmp_path):
    copy_notes(tmp_path)
    config = load_config(write_game(tmp_path, [{"challenge": "chal/notes"}]))
    notes = config.services[0]
    assert (notes.name, notes.ports, notes.vulns, notes.flag_mode) == ("notes", [8001], [1, 1], "service")
    assert (notes.checker.protocol, notes.checker.class_name, notes.checker.timeout) == ("native", "NotesChecker", 10)
    assert notes.checker.path == "chal/notes/checker.py"  # challenge.yml's path is the challenge folder's
    assert config.resolve(notes.checker.path) == tmp_path / "chal" / "notes" / "checker.py"
    assert notes.challenge == "chal/notes" and notes.writable == ["/srv/*/data"]


def test_documentation_keys_are_ignored_and_flag_file_and_writable_are_read(tmp_path):
    def edit(meta):
        meta.update(author="someone", flag_mode="file", flag_file="/srv/notes/flag", writable=["/srv/notes/db"])
    copy_notes(tmp_path, edit)
    notes = load_config(write_game(tmp_path, [{"challenge": "chal/notes"}])).services[0]
    assert (notes.flag_mode, notes.flag_file, notes.writable) == ("file", "/srv/notes/flag", ["/srv/notes/db"])


def test_the_game_file_overrides_key_by_key_and_checker_sub_key_by_sub_key(tmp_path):
    copy_notes(tmp_path)
    (tmp_path / "mine.py").write_text("class Mine: pass\n")
    config = load_config(write_game(tmp_path, [
        {"challenge": "chal/notes", "name": "notes2", "ports": [9001], "checker": {"timeout": 5}},
        {"challenge": "chal/notes", "vulns": [2, 1], "checker": {"path": "mine.py", "class": "Mine"}},
    ]))
    first, second = config.services
    assert (first.name, first.ports, first.vulns) == ("notes2", [9001], [1, 1])
    assert (first.checker.protocol, first.checker.path, first.checker.class_name, first.checker.timeout) == (
        "native", "chal/notes/checker.py", "NotesChecker", 5)
    assert (second.name, second.ports, second.vulns) == ("notes", [8001], [2, 1])
    assert (second.checker.path, second.checker.class_name, second.checker.timeout) == ("mine.py", "Mine", 10)
    assert config.resolve(second.checker.path) == tmp_path / "mine.py"  # the game file's path is its own


def test_challenge_yml_is_optional_only_for_an_entry_that_needs_nothing_from_it(tmp_path):
    (tmp_path / "bare" / "service").mkdir(parents=True)  # a challenge folder with just its service
    full = {"name": "bare", "checker": {"protocol": "cli", "path": "c.py"}, "challenge": "bare"}
    assert load_config(write_game(tmp_path, [full])).services[0].vulns == [1]
    message = load_error(write_game(tmp_path, [full, {"challenge": "bare"},
                                               {"name": "b2", "challenge": "bare", "checker": {"timeout": 5}}]))
    assert "game.yml: services[1].challenge: bare: no challenge.yml in" in message
    assert "game.yml: services[2].challenge: bare: no challenge.yml in" in message
    assert "name: Field required" not in message  # not the noise of the keys it would have given


@pytest.mark.parametrize(("entry", "edit", "text", "expected"), [
    ({"challenge": "chal/nots"}, None, None, "services[0].challenge: chal/nots: no such folder"),
    ({"challenge": "chal/notes"}, None, "name: notes\nports: [8001\n",
     "services[0].challenge: chal/notes/challenge.yml: line 3 column 1: not valid YAML"),
    ({"challenge": "chal/notes"}, None, "- a list\n", "services[0].challenge: chal/notes/challenge.yml: "
     "the top level must be a mapping"),
    ({"challenge": "chal/notes"}, lambda m: m.update(ports=8001),
     None, "services[0].ports (from chal/notes/challenge.yml): Input should be a valid list"),
    ({"challenge": "chal/notes"}, lambda m: m.update(ports=[70000]),
     None, "services[0].ports (from chal/notes/challenge.yml): port 70000 out of range"),
    ({"challenge": "chal/notes"}, lambda m: m.update(checker="checker.py"),
     None, "services[0].checker (from chal/notes/challenge.yml): give a mapping"),
    ({"challenge": "chal/notes"}, lambda m: m["checker"].update(protocol="grpc"),
     None, "services[0].checker.protocol (from chal/notes/challenge.yml): Input should be"),
    ({"challenge": "chal/notes"}, lambda m: m["checker"].update(colour="blue"),
     None, "services[0].checker.colour (from chal/notes/challenge.yml): Extra inputs are not permitted"),
    ({"challenge": "chal/notes", "checker": {"timeout": 5}}, lambda m: m["checker"].pop("path"),
     None, "services[0].checker (with keys from chal/notes/challenge.yml): protocol native needs path"),
    ({"challenge": "chal/notes"}, lambda m: m.update(name=7),
     None, "services[0].name (from chal/notes/challenge.yml): Input should be a valid string"),
])
def test_each_challenge_yml_problem_names_the_key_and_the_file(tmp_path, entry, edit, text, expected):
    folder = copy_notes(tmp_path, edit)
    if text is not None:
        (folder / "challenge.yml").write_text(text)
    assert expected in load_error(write_game(tmp_path, [entry]))


def test_a_challenge_timeout_too_long_for_the_round_names_challenge_yml(tmp_path):
    copy_notes(tmp_path)
    message = load_error(write_game(tmp_path, [{"challenge": "chal/notes"}], round_seconds=8))
    assert "services[0].checker.timeout (from chal/notes/challenge.yml): 10s does not fit a 8s round" in message
    config = load_config(write_game(tmp_path, [{"challenge": "chal/notes", "checker": {"timeout": 4}}],
                                    round_seconds=8))
    assert config.services[0].checker.timeout == 4


def test_validate_reports_merged_values_naming_file_and_key(tmp_path):
    cli = [sys.executable, "-m", "deploy.cli", "validate"]
    copy_notes(tmp_path, lambda m: m.update(ports=[8001, 0]))
    out = subprocess.run([*cli, str(write_game(tmp_path, [{"challenge": "chal/notes"}]))],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "game.yml: services[0].ports (from chal/notes/challenge.yml): port 0 out of range" in out.stderr
    shutil.rmtree(tmp_path / "chal")
    copy_notes(tmp_path, lambda m: m["checker"].update({"class": "NoSuchChecker"}))
    out = subprocess.run([*cli, str(write_game(tmp_path, [{"challenge": "chal/notes"}], mode="hosted"))],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "services[0].checker.class (from chal/notes/challenge.yml): no class NoSuchChecker" in out.stderr
    out = subprocess.run([*cli, str(write_game(tmp_path, [{"challenge": "chal/notes", "checker": {
        "class": "NotesChecker"}}], mode="hosted"))], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def demo_services_before(round_seconds: float) -> list[dict[str, Any]]:
    """What deploy/demo.py's challenge_services copied out of every challenge.yml before issue 12."""
    services = []
    for folder in SAMPLES:
        meta = yaml.safe_load((folder / "challenge.yml").read_text())
        checker = dict(meta["checker"])
        checker["path"] = str(folder / checker["path"])
        if "timeout" in checker:
            checker["timeout"] = min(float(checker["timeout"]), round_seconds / 2)
        entry = {"name": meta["name"], "checker": checker, "vulns": meta.get("vulns", [1]),
                 "ports": meta.get("ports", []), "challenge": str(folder),
                 "flag_mode": meta.get("flag_mode", "service")}
        if "flag_file" in meta:
            entry["flag_file"] = meta["flag_file"]
        services.append(entry)
    return services


@pytest.mark.parametrize("round_seconds", [8, 20, 60])
def test_the_sample_challenges_load_in_short_form_as_the_demo_configured_them(round_seconds):
    assert [p.name for p in SAMPLES] == ["notes", "pinger", "shop", "vault"]
    before = parse_config(game(demo_services_before(round_seconds), round_seconds), "<before>", ROOT).services
    short = [{"challenge": str(folder)} for folder in SAMPLES]
    if round_seconds < 30:  # the demo's cap: half a short round
        for entry in short:
            entry["checker"] = {"timeout": round_seconds / 2}
    assert [s.model_dump() for s in parse_config(game(short, round_seconds), "<short>", ROOT).services] == [
        s.model_dump() for s in before]
    demo = challenge_services(round_seconds)
    assert all(set(entry) <= {"challenge", "checker"} and set(entry.get("checker", {})) <= {"timeout"}
               for entry in demo), demo
    assert [s.model_dump() for s in parse_config(game(demo, round_seconds), "<demo>", ROOT).services] == [
        s.model_dump() for s in before]


def test_relative_short_form_resolves_against_the_game_files_folder(tmp_path):
    nested = tmp_path / "games" / "finals"
    nested.mkdir(parents=True)
    copy_notes(tmp_path)
    config = load_config(write_game(nested, [{"challenge": "../../chal/notes"}]))
    assert config.resolve(config.services[0].checker.path) == tmp_path / "chal" / "notes" / "checker.py"
