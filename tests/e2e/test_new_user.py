"""A new user's first hour: getting the backend before it is on
PyPI as the README says, `init` output that publishes and installs, and
scripts/test saying what it installs."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, UV, clean_env, kept_uwsgi_wheel, make_venv, plugin_answer, run

BIN = Path(sys.executable).parent


def readme_block(marker: str) -> str:
    [block] = [b for b in re.findall(r"^```sh\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S) if marker in b]
    return block


@pytest.mark.slow
def test_readme_way_to_get_the_backend_before_pypi(tmp_path, isolated_home):
    """The README's wheelhouse recipe, run as written on a machine without the backend."""
    block = readme_block("PIP_FIND_LINKS")
    assert "path/to/uwsgi-plugin-backend" in block
    user = make_venv(tmp_path / "fresh")  # uwsgi compiled by pip from its sdist, as a user's, kept for the suite
    user.install(kept_uwsgi_wheel())
    project = tmp_path / "my plugin"
    project.mkdir()
    for name in ("hello.c", "uwsgiplugin.py", "pyproject.toml", "README.md", "LICENSE"):
        (project / name).write_bytes((SAMPLE / name).read_bytes())
    # Without the recipe, the isolated build cannot find the backend.
    env = clean_env(PATH=f"{user.root / 'bin'}:{clean_env()['PATH']}", PIP_FIND_LINKS="", PIP_NO_INDEX="")
    plain = run(["pip", "install", "."], cwd=project, env=env, check=False)
    assert plain.returncode != 0 and "uwsgi-plugin-backend" in plain.stdout
    script = "set -e\n" + block.replace("path/to/uwsgi-plugin-backend", shlex.quote(str(REPO)))
    run(["bash", "-c", script], cwd=project, env=env)
    assert list((isolated_home / "wheelhouse").glob("uwsgi_plugin_backend-*.whl"))
    directory = run([user.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert plugin_answer(user.uwsgi, directory, "hello", 250, tmp_path / "uwsgi.log") == "Hello from a wheel"


@pytest.mark.slow
def test_readme_pre_release_uv_build_and_the_command(tmp_path, isolated_home, wheelhouse):
    """Issue 25: the README's recipes for uv (which reads no PIP_FIND_LINKS) and for the
    `uwsgi-plugin-backend` command before the release, run as written, with the wheelhouse
    the recipe above makes, in an activated environment that has uwsgi."""
    shutil.copytree(wheelhouse, isolated_home / "wheelhouse")
    user = make_venv(tmp_path / "user env")
    user.install(kept_uwsgi_wheel())
    only_uv = tmp_path / "uv-bin"  # uv on PATH, and no other program of the suite's venv
    only_uv.mkdir()
    (only_uv / "uv").symlink_to(UV)
    env = clean_env(PATH=f"{user.root / 'bin'}:{only_uv}:{clean_env()['PATH']}", VIRTUAL_ENV=str(user.root),
                    PIP_FIND_LINKS="", UV_FIND_LINKS="", UV_TOOL_DIR=str(tmp_path / "tools"),
                    UV_TOOL_BIN_DIR=str(tmp_path / "tool-bin"))
    plugin = tmp_path / "my plugin"
    plugin.mkdir()
    for name in ("hello.c", "uwsgiplugin.py"):
        (plugin / name).write_bytes((SAMPLE / name).read_bytes())

    # The command, from the wheelhouse: init writes the project file.
    script = readme_block("python -m uwsgi_plugin_backend init").replace("path/to/plugin", shlex.quote(str(plugin)))
    said = run(["bash", "-c", "set -e\n" + script], env=env).stdout
    assert "import package uwsgi_plugin_hello, entry point hello" in said
    assert (plugin / "pyproject.toml").is_file()

    # uv build: without the wheelhouse named it cannot find the backend; with it, a wheel for the user's uwsgi.
    plain = run([UV, "build", "--wheel"], cwd=plugin, env=env, check=False)
    assert plain.returncode != 0 and "uwsgi-plugin-backend was not found in the package registry" in plain.stdout
    block = readme_block('uv build --find-links "$HOME/wheelhouse"')
    built = run(["bash", "-c", "set -e\n" + block], cwd=plugin, env=env).stdout
    assert f"building for {user.uwsgi}" in built, built
    [wheel] = (plugin / "dist").glob("*.whl")
    user.pip("install", "-q", wheel)
    directory = run([user.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert plugin_answer(user.uwsgi, directory, "hello", 250, tmp_path / "uwsgi.log") == "Hello from a wheel"

    # As a tool of its own: the command on PATH, outside any environment.
    [line] = re.findall(r"`(uv tool install [^`]*)`\.", (REPO / "README.md").read_text())
    run(["bash", "-c", line], env=env)
    other = tmp_path / "other plugin"
    other.mkdir()
    (other / "uwsgiplugin.py").write_text("NAME = 'other'\nGCC_LIST = ['other']\n")
    run([tmp_path / "tool-bin" / "uwsgi-plugin-backend", "init", other], env=clean_env())
    assert 'other = "uwsgi_plugin_other:plugin_dir"' in (other / "pyproject.toml").read_text()


@pytest.mark.slow
def test_init_project_publishes_and_installs(tmp_path, wheelhouse, debian_uwsgi):
    """init with a capitalised NAME: the wheel has the package the entry point names,
    twine check --strict passes on the sdist and wheel, and the plugin serves."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "uwsgiplugin.py").write_text((SAMPLE / "uwsgiplugin.py").read_text().replace("NAME = 'hello'", "NAME = 'Hello'"))
    (plugin / "hello.c").write_text((SAMPLE / "hello.c").read_text().replace("hello_plugin =", "Hello_plugin ="))
    said = run([BIN / "uwsgi-plugin-backend", "init", plugin], env=clean_env()).stdout
    assert "import package uwsgi_plugin_hello, entry point Hello" in said
    assert (plugin / "README.md").is_file()
    env = clean_env(PIP_FIND_LINKS=str(wheelhouse), UWSGI_PLUGIN_BACKEND_UWSGI=str(debian_uwsgi))
    run([sys.executable, "-m", "build", "--outdir", tmp_path / "dist", plugin], env=env)  # isolated, sdist then wheel
    dist = sorted((tmp_path / "dist").iterdir())
    assert len(dist) == 2
    run([BIN / "twine", "check", "--strict", *dist])
    user = make_venv(tmp_path / "user")
    user.pip("install", "-q", *(p for p in dist if p.suffix == ".whl"))
    directory = run([user.python, "-m", "uwsgi_plugin_hello", "--uwsgi", debian_uwsgi], env=clean_env()).stdout.strip()
    assert (Path(directory) / "Hello_plugin.so").is_file()
    entry = "from importlib.metadata import entry_points; print(entry_points(group='uwsgi.plugins')['Hello'].load()('%s'))"
    assert run([user.python, "-c", entry % debian_uwsgi], env=clean_env()).stdout.strip() == directory
    assert plugin_answer(debian_uwsgi, directory, "Hello", 250, tmp_path / "uwsgi.log") == "Hello from a wheel"


def test_scripts_test_names_the_system_packages_first():
    script = (REPO / "scripts" / "test").read_text()
    [packages] = re.findall(r"^packages=\((.*)\)$", script, re.M)
    result = run(["bash", REPO / "scripts" / "test", "--collect-only", "-q", "tests/e2e/test_new_user.py"], env=clean_env())
    first = result.stdout.splitlines()[0]
    assert first == f"scripts/test: system packages the tests need: {packages}"
    assert "already installed" in result.stdout.splitlines()[1] or "installing with apt-get" in result.stdout.splitlines()[1]
