"""Every recipe that starts uwsgi in README.md, sample_plugin/README.md and
every page of docs/, taken from the code blocks as written and run against a
real uwsgi with the sample plugin installed (issue 12, item 8; issue 25: the
docs/ site)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, clean_env, http_get, run, running_uwsgi

DOCS = sorted((REPO / "docs").glob("*.md"))
READMES = [REPO / "README.md", SAMPLE / "README.md", *DOCS]
DOC_SOCKET = "127.0.0.1:8080"  # the recipes' address; the test serves on a free port instead


def code_blocks(language: str) -> list[tuple[str, str]]:
    """(readme name, block text) of every top-level fenced block in that language."""
    found = []
    for readme in READMES:
        for block in re.findall(rf"^```{language}\n(.*?)^```", readme.read_text(), re.M | re.S):
            found.append((readme.relative_to(REPO).as_posix(), block))
    return found


def uwsgi_commands() -> list[tuple[str, str]]:
    """Shell lines that start a serving uwsgi (continuations joined)."""
    commands = []
    for readme, block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if re.match(r'(eval ")?uwsgi ', line) and DOC_SOCKET in line:
                commands.append((readme, line.split("   #")[0].strip()))
    return commands


def ini_recipes() -> list[tuple[str, str]]:
    return [(readme, block) for readme, block in code_blocks("ini") if block.startswith("[uwsgi]")]


def test_the_readmes_hold_the_recipes():
    assert len(DOCS) >= 8  # the docs/ pages are read too
    commands = [readme for readme, _ in uwsgi_commands()]
    assert commands.count("README.md") >= 1 and commands.count("sample_plugin/README.md") >= 1  # the quick starts
    assert commands.count("docs/operators.md") >= 1  # eval "uwsgi $(uwsgi-plugin-backend args hello) ..."
    assert sorted(readme for readme, _ in ini_recipes()) == ["docs/operators.md", "sample_plugin/README.md"]
    for readme in READMES:
        assert "plugins-dir = @(exec://" not in readme.read_text() and "\nplugin = " not in readme.read_text()


def test_every_uwsgi_command_in_the_docs_is_a_recipe_or_a_form():
    """A `uwsgi ...` line of a sh block either serves on the recipes' address (and so
    is run by test_command_recipe_serves) or ends in `...`, a form to fill in."""
    for readme, block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("   #")[0].strip()
            if re.match(r'(eval ")?uwsgi ', command):
                assert DOC_SOCKET in command or command.endswith("..."), (readme, command)


@pytest.fixture
def venv_on_path(tool_venv, monkeypatch):  # noqa: F811
    """The user's environment first on PATH, as after `source venv/bin/activate`."""
    monkeypatch.setenv("PATH", f"{tool_venv.root / 'bin'}:{clean_env()['PATH']}")
    return tool_venv


def uwsgi_words(command: str) -> list[str]:
    """The arguments the shell gives uwsgi for ``command``, without the recipe's socket."""
    script = re.sub(r'^(eval ")?uwsgi ', r"\1set -- ", command) + '\nprintf "%s\\0" "$@"'
    words = run(["sh", "-c", script], env=clean_env()).stdout.split("\0")[:-1]
    at = words.index("--http-socket")
    assert words[at + 1] == DOC_SOCKET
    return words[:at] + words[at + 2:]


@pytest.mark.slow
@pytest.mark.parametrize("readme, command", uwsgi_commands())
def test_command_recipe_serves(readme, command, venv_on_path, tmp_path):
    with running_uwsgi(venv_on_path.uwsgi, *uwsgi_words(command), log=tmp_path / "uwsgi.log") as url:
        assert http_get(url)[2].startswith("Hello")


@pytest.mark.slow
@pytest.mark.parametrize("readme, ini", ini_recipes())
def test_ini_recipe_serves(readme, ini, venv_on_path, tmp_path):
    config = tmp_path / "uwsgi.ini"
    config.write_text(ini.replace(f"http-socket = {DOC_SOCKET}\n", ""))
    with running_uwsgi(venv_on_path.uwsgi, "--ini", str(config), log=tmp_path / "uwsgi.log") as url:
        assert http_get(url)[2].startswith("Hello")
    assert "need-plugin" not in ini and "plugins-dir" not in ini  # both come from the package


@pytest.mark.slow
def test_ini_recipe_stops_uwsgi_when_the_plugin_cannot_load(venv_on_path, tmp_path):
    """need-plugin: a broken build makes uwsgi exit instead of serving nothing."""
    [(_, ini)] = [recipe for recipe in ini_recipes() if recipe[0] == "docs/operators.md"]
    directory = Path(run([venv_on_path.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip())
    plugin = directory / "hello_plugin.so"
    saved = plugin.read_bytes()
    plugin.write_bytes(b"not a shared object")
    try:
        config = tmp_path / "uwsgi.ini"
        config.write_text(ini.replace(DOC_SOCKET, "127.0.0.1:0"))
        result = subprocess.run([str(venv_on_path.uwsgi), "--ini", str(config)], capture_output=True, text=True,
                                timeout=30, env=clean_env())
        assert result.returncode != 0
    finally:
        plugin.write_bytes(saved)
