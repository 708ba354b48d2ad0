"""The game file: clear errors naming file and key, defaults filled, CLI init/validate."""

import subprocess
import sys

import pytest
import yaml

from scoreboard.config import ConfigError, derive_token, load_config, parse_config
from tests.conftest import game_data


def write(tmp_path, data):
    path = tmp_path / "game.yml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def errors_for(tmp_path, data) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    return str(info.value)


def test_defaults_fill_ids_tokens_addresses_and_networks(tmp_path):
    config = load_config(write(tmp_path, game_data("redis://x", teams=2)))
    team = config.team(2)
    assert team.token == derive_token(config.game.secret, 2)
    assert team.address == "127.0.2.1"
    assert team.network == "127.0.2.0/24"
    assert [t.name for t in config.playing_teams] == ["team1", "team2"]


def test_error_names_file_key_path_and_problem(tmp_path):
    data = game_data("redis://x")
    data["teams"][1]["network"] = "not-a-net"
    data["services"][0]["ports"] = [70000]
    message = errors_for(tmp_path, data)
    assert "game.yml: teams[1].network: not a network in CIDR form" in message
    assert "services[0].ports: port 70000 out of range" in message


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["game"].pop("secret"), "game.secret: Field required"),
    (lambda d: d["game"].update(secret="short"), "game.secret: String should have at least 16"),
    (lambda d: d["game"].update(round_seconds=0), "game.round_seconds: Input should be greater than 0"),
    (lambda d: d["game"].update(scoring={"formula": "elo"}), "game.scoring.formula: Input should be"),
    (lambda d: d["teams"].append({"name": "team1"}), "teams[5].name: 'team1' repeats teams[0]"),
    (lambda d: d["services"][0]["checker"].update(protocol="eno"), "services[0].checker: protocol eno needs url"),
    (lambda d: d.update(colour="blue"), "colour: Extra inputs are not permitted"),
    (lambda d: d["teams"].clear(), "teams: List should have at least 1 item"),
    (lambda d: [t.update(nop=True) for t in d["teams"]], "at least one team must not be nop"),
])
def test_each_bad_value_gets_a_specific_message(tmp_path, change, expected):
    data = game_data("redis://x")
    change(data)
    assert expected in errors_for(tmp_path, data)


def test_broken_yaml_names_line_and_column(tmp_path):
    assert "line 2 column 9: not valid YAML" in errors_for(tmp_path, "game:\n  name: : x\n")


def test_non_mapping_and_missing_file_are_clear(tmp_path):
    assert "top level must be a mapping" in errors_for(tmp_path, "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yml")


def test_init_writes_an_example_that_validates(tmp_path):
    path = tmp_path / "g.yml"
    cli = [sys.executable, "-m", "deploy.cli"]
    subprocess.run([*cli, "init", str(path)], check=True, capture_output=True)
    text = path.read_text()
    assert "CHANGE-ME" not in text and "# " in text
    out = subprocess.run([*cli, "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok: game 'mygame', 2 teams (+1 NOP)" in out.stdout  # not the demo's name: no clash of containers
    config = load_config(path)
    notes = config.services[0]
    assert (config.base_dir / notes.checker.path).is_file() and (config.base_dir / notes.challenge).is_dir()
    meta = yaml.safe_load((config.base_dir / notes.challenge / "challenge.yml").read_text())
    assert (notes.name, notes.ports, notes.checker.class_name) == (
        meta["name"], meta["ports"], meta["checker"]["class"])
    assert yaml.safe_load(text)["services"] == [{"challenge": notes.challenge}]  # the short form
    again = subprocess.run([*cli, "init", str(path)], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr


def test_validate_exits_2_with_messages_and_starts_nothing(tmp_path):
    path = write(tmp_path, {"game": {"name": "bad name"}})
    out = subprocess.run([sys.executable, "-m", "deploy.cli", "validate", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "game.name: use letters" in out.stderr and "teams: Field required" in out.stderr


def test_parse_config_accepts_the_test_game():
    assert parse_config(game_data("redis://x")).service(2).name == "svc2"


def test_a_checker_timeout_that_cannot_fit_the_round_is_refused_naming_the_key():
    """An action only starts with its whole timeout left, so a timeout longer than the round
    would mean the service is never checked: refused before anything starts."""
    from scoreboard.config import ConfigError, parse_config

    data = game_data("redis://127.0.0.1:1/0", round_seconds=8)
    data["services"][1]["checker"]["timeout"] = 10
    with pytest.raises(ConfigError, match=r"services\[1\]\.checker\.timeout: 10s does not fit a 8s round"):
        parse_config(data)
    data["services"][1]["checker"].pop("timeout")
    config = parse_config(data)
    assert [s.checker.timeout for s in config.services] == [4, 4]  # default: half a short round


def test_validate_refuses_what_it_can_know_offline(tmp_path):
    """Issue 12 item 4: a missing challenge folder or checker file, a port out of range, an
    engine URL without a scheme: each an error naming its key, not "ok"."""
    cli = [sys.executable, "-m", "deploy.cli"]
    path = tmp_path / "g.yml"
    subprocess.run([*cli, "init", str(path)], check=True, capture_output=True)
    good = yaml.safe_load(path.read_text())
    cases = [
        (lambda d: d["services"][0].update(challenge="no-such-folder"),
         "services[0].challenge: no-such-folder: no such folder"),
        (lambda d: d["services"][0].update(name="notes", checker={"protocol": "cli", "path": "missing.py"},
                                           challenge="no-such-folder"), "services[0].challenge: no such folder"),
        (lambda d: d["services"][0].update(checker={"path": "missing.py"}), "services[0].checker.path: no such file"),
        (lambda d: d["services"][0].update(checker={"class": "Nope"}), "services[0].checker.class: no class Nope"),
        (lambda d: d["web"].update(port=5250000), "web.port: Input should be less than or equal to 65535"),
        (lambda d: d["deploy"].update(engines=["127.0.0.1:2375"]), "deploy.engines: '127.0.0.1:2375' is not a Docker"),
        (lambda d: d.update(redis_url="127.0.0.1:6379"), "redis_url: String should match pattern"),
    ]
    for edit, message in cases:
        data = yaml.safe_load(yaml.safe_dump(good))
        data["deploy"]["mode"] = "hosted"
        edit(data)
        path.write_text(yaml.safe_dump(data))
        out = subprocess.run([*cli, "validate", str(path)], capture_output=True, text=True)
        assert out.returncode == 2 and message in out.stderr, (message, out.stderr)
