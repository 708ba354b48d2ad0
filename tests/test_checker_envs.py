"""Per-service checker environments: conflicting pins side by side, offline builds from a
fetched wheelhouse (real pip, real registry for `fetch`), usable by `nobody`, idempotent."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from checker import envs
from scoreboard.config import ConfigError, GameConfig, load_config
from tests.conftest import game_data

CHECKER = 'from checker.lib import Checker\n\n\nclass Pinned(Checker):\n    """Does nothing."""\n'
FOLDERS = {"old": "six==1.15.0\n", "new": "six==1.16.0\n", "plain": None, "racer": None}


@pytest.fixture(scope="module")
def space() -> Iterator[Path]:
    """A world-traversable scratch folder (pytest's own tmp is 0700) with ENVS_ROOT and the
    wheelhouse in it; the challenge folders sit in a 0700 subfolder, like a home."""
    base = Path(tempfile.mkdtemp(prefix="adrange-envs-"))
    base.chmod(0o755)
    (base / "home").mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADRANGE_CHECKER_ENVS", str(base / "envs"))
        patch.setenv("ADRANGE_WHEELHOUSE", str(base / "wheels"))
        patch.delenv(envs.ONLINE_VARIABLE, raising=False)
        yield base
    shutil.rmtree(base)


def write_game(home: Path, services: list[dict], name: str = "game.yml") -> Path:
    data = game_data("redis://x", teams=1, services=0)
    data["services"] = services
    path = home / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def game(space: Path) -> GameConfig:
    home = space / "home"
    for folder, requirements in FOLDERS.items():
        (home / folder).mkdir()
        (home / folder / "checker.py").write_text(CHECKER + f"# {folder}\n")
        if requirements:
            (home / folder / "requirements.txt").write_text(requirements)
    services = [{"name": f, "checker": {"protocol": "native", "path": f"{f}/checker.py", "class": "Pinned"}}
                for f in FOLDERS]
    services.append({"name": "twin", "checker": {"protocol": "cli", "path": "old/checker.py"}})
    return load_config(write_game(home, services))


@pytest.fixture(scope="module")
def wheelhouse(game: GameConfig) -> Path:
    fetched = envs.fetch(game)
    assert [f.parent.name for f in fetched] == ["new", "old"]
    return envs.wheelhouse_dir()


def service(config: GameConfig, name: str):
    return next(s for s in config.services if s.name == name)


def run(env: envs.CheckerEnv, code: str, user: str | None = None) -> str:
    prefix = ["runuser", "-u", user, "--"] if user else []
    out = subprocess.run([*prefix, str(env.python), "-P", "-c", code], cwd=env.checker_dir,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_conflicting_pins_build_offline_side_by_side(game, wheelhouse):
    old, new = (envs.build_env(game, service(game, name)) for name in ("old", "new"))
    assert old.root != new.root and old.ready and new.ready
    assert run(old, "import six; print(six.__version__)") == "1.15.0"
    assert run(new, "import six; print(six.__version__)") == "1.16.0"
    assert envs.env_for(game, service(game, "twin")) == old  # same checker and pins: one env
    assert old.checker == old.checker_dir / "checker.py" and old.checker.read_text().endswith("# old\n")
    assert old.forkserver.is_file() == (Path(envs.__file__).parent / "sandbox" / "forkserver.py").is_file()


def test_env_is_usable_by_nobody(game, wheelhouse, space):
    env = envs.build_env(game, service(game, "old"))
    original = service(game, "old").checker.path
    denied = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(game.resolve(original))],
                            capture_output=True)
    assert denied.returncode != 0  # the original lives under a 0700 home
    code = ("import checker.lib, six, requests, pathlib; from checker.lib import HttpSession; "
            "print(pathlib.Path('checker.py').read_text().splitlines()[-1], six.__version__)")
    assert run(env, code, user="nobody") == "# old 1.15.0"
    modes = {p.stat().st_mode & 0o777 for p in env.root.resolve().rglob("*") if not p.is_symlink()}
    assert modes <= {0o755, 0o644}, oct(max(modes))


def test_second_build_is_a_no_op(game, wheelhouse):
    env = envs.build_env(game, service(game, "new"))
    marker = (env.root / ".ready").stat().st_mtime_ns
    started = time.monotonic()
    assert envs.build_env(game, service(game, "new")) == env
    assert envs.ensure_env(game, service(game, "new")) == env
    assert time.monotonic() - started < 0.5
    assert (env.root / ".ready").stat().st_mtime_ns == marker


def test_no_requirements_build_needs_no_registry_or_wheelhouse(game, space):
    started = time.monotonic()
    env = envs.build_env(game, service(game, "plain"), wheelhouse=space / "nothing-here")
    assert time.monotonic() - started < 5
    assert run(env, "import checker.lib, requests; print(checker.lib.Checker.__name__)", user="nobody") == "Checker"


def test_parallel_builds_share_one_build(game):
    racer = service(game, "racer")
    results: list[envs.CheckerEnv] = []
    threads = [threading.Thread(target=lambda: results.append(envs.build_env(game, racer))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1 and results[0].ready
    names = {p.name for p in results[0].root.parent.iterdir()}
    assert not [n for n in names if n.endswith(".link")]
    assert {n[1:-len(".env")] for n in names if n.endswith(".env")} <= names  # every build dir published


def test_missing_wheels_fail_offline_with_the_fix(space, wheelhouse):
    home = space / "home"
    (home / "unfetched").mkdir(exist_ok=True)
    (home / "unfetched" / "checker.py").write_text(CHECKER)
    (home / "unfetched" / "requirements.txt").write_text("six==1.14.0\n")
    config = load_config(write_game(home, [{"name": "u", "checker": {"protocol": "cli",
                                                                       "path": "unfetched/checker.py"}}], "u.yml"))
    with pytest.raises(envs.CheckerEnvError) as info:
        envs.ensure_env(config, config.services[0])
    assert "six==1.14.0" in str(info.value) and "adrange checkers fetch" in str(info.value)
    assert not envs.env_for(config, config.services[0]).root.exists()


def test_missing_apt_package_is_not_installed_by_workers(game, space):
    spec = {"protocol": "cli", "path": "plain/checker.py", "apt": ["coreutils", "adrange-no-such-package"]}
    config = load_config(write_game(space / "home", [{"name": "a", "checker": spec}], "apt.yml"))
    assert envs.missing_apt(config.services[0].checker.apt) == ["adrange-no-such-package"]
    assert envs.env_for(config, config.services[0]) != envs.env_for(game, service(game, "plain"))
    with pytest.raises(envs.CheckerEnvError, match=r"adrange-no-such-package.*adrange checkers build"):
        envs.ensure_env(config, config.services[0])


def test_config_errors_name_the_key(tmp_path):
    spec = {"protocol": "cli", "path": "c.py", "requirements": "nope/requirements.txt"}
    with pytest.raises(ConfigError, match=r"services\[0\]\.checker\.requirements: no such file: .*nope"):
        load_config(write_game(tmp_path, [{"name": "a", "checker": spec}]))
    spec = {"protocol": "cli", "path": "c.py", "apt": ["Bad Name"]}
    with pytest.raises(ConfigError, match=r"services\[0\]\.checker\.apt: 'Bad Name' is not a Debian package"):
        load_config(write_game(tmp_path, [{"name": "a", "checker": spec}]))
    spec = {"protocol": "eno", "url": "http://x", "apt": ["curl"]}
    with pytest.raises(ConfigError, match=r"services\[0\]\.checker: requirements, apt: only native and cli"):
        load_config(write_game(tmp_path, [{"name": "a", "checker": spec}]))


def test_cli_status_and_build(game, wheelhouse):
    from deploy.cli import main

    path = str(game.base_dir / "game.yml")
    build = CliRunner().invoke(main, ["checkers", "build", "-c", path])
    assert build.exit_code == 0, build.output
    status = CliRunner().invoke(main, ["checkers", "status", "-c", path])
    assert status.exit_code == 0, status.output
    assert "old, twin" in status.output and "six==1.16.0" in status.output and "not built" not in status.output


def test_checker_lib_imports_only_what_envs_carry():
    """checker.lib is copied into every env with scoreboard.types and requests: nothing else."""
    lib = Path(envs.__file__).parent / "lib"
    outside = set()
    for path in lib.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            outside |= {n for n in names if n.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= {"scoreboard.types", "requests", "checker.lib"}, outside
