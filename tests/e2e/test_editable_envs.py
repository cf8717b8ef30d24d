"""Editable installs of one checkout in several environments, and the errors
an editable install can meet later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    SAMPLE,
    Venv,
    as_other_user,
    clean_env,
    copy_project,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
)

DEBIAN = Path("/usr/bin/uwsgi-core")


def hello_dir(venv: Venv, uwsgi: Path) -> str:
    return run([venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env()).stdout.strip()


def set_greeting(project: Path, text: str) -> None:
    source = project / "hello.c"
    source.write_text(source.read_text().replace("Hello from a wheel", text))


@pytest.mark.slow
def test_two_venvs_keep_their_own_editable_builds(tmp_path, wheelhouse, debian_uwsgi, seeded_cache):
    project = copy_project(SAMPLE, tmp_path / "project")
    first = make_venv(tmp_path / "first")  # builds for pip's uwsgi beside its python
    first.install(kept_uwsgi_wheel(), "--find-links", wheelhouse, "uwsgi-plugin-backend")
    second = make_venv(tmp_path / "second")  # builds for Debian's uwsgi
    first.pip("install", "-q", "--find-links", wheelhouse, "-e", project)
    second.pip("install", "-q", "--find-links", wheelhouse, "-C", f"uwsgi={debian_uwsgi}", "-e", project)
    assert hello_dir(first, first.uwsgi) != hello_dir(second, debian_uwsgi)
    for venv, uwsgi in ((first, first.uwsgi), (second, debian_uwsgi)):
        answer = plugin_answer(uwsgi, hello_dir(venv, uwsgi), "hello", 250, tmp_path / f"{venv.root.name}.log")
        assert answer == "Hello from a wheel"
    # rebuild, run from the first environment, rebuilds that environment's install only.
    set_greeting(project, "Hello from the first venv")
    run([first.root / "bin" / "uwsgi-plugin-backend", "rebuild", project], env=clean_env())
    assert plugin_answer(first.uwsgi, hello_dir(first, first.uwsgi), "hello", 250, tmp_path / "a.log") == "Hello from the first venv"
    assert plugin_answer(debian_uwsgi, hello_dir(second, debian_uwsgi), "hello", 250, tmp_path / "b.log") == "Hello from a wheel"
    # With another cache directory set, rebuild still finds the build directory the install reads.
    run([first.root / "bin" / "uwsgi-plugin-backend", "rebuild", project],
        env=clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(seeded_cache(tmp_path / "other-cache"))))


@pytest.mark.slow
def test_rebuild_after_the_cache_moved(tmp_path, wheelhouse, isolated_home):
    project = copy_project(SAMPLE, tmp_path / "project")
    venv = make_venv(tmp_path / "dev")
    venv.install("--find-links", wheelhouse, "uwsgi-plugin-backend")
    venv.pip("install", "-q", "--find-links", wheelhouse, "-C", f"uwsgi={DEBIAN}", "-e", project)
    cache = isolated_home / ".cache" / "uwsgi-plugin-backend"
    cache.rename(tmp_path / "moved-cache")
    result = run([venv.root / "bin" / "uwsgi-plugin-backend", "rebuild", project], env=clean_env(), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout
    [line] = result.stdout.splitlines()
    assert line.startswith("uwsgi-plugin-backend: error: cannot rebuild uwsgi-plugin-hello: the editable install in "
                           "this environment reads ")
    assert f"install it again: {venv.python} -m pip install -e {project}" in line


@pytest.mark.slow
def test_editable_install_with_an_unwritable_cache(tmp_path, wheelhouse):
    project = copy_project(SAMPLE, tmp_path / "project")
    venv = make_venv(tmp_path / "dev")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(blocker / "cache"))
    result = run([venv.python, "-m", "pip", "install", "--find-links", wheelhouse, "-C", f"uwsgi={DEBIAN}", "-e", project],
                 env=env, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1, result.stdout
    assert (f"uwsgi-plugin-backend: error: cannot write the editable build directory {blocker / 'cache' / 'editable'}"
            in result.stdout)
    assert "set UWSGI_PLUGIN_BACKEND_CACHE_DIR to a writable directory, or pass -C build-dir=PATH" in result.stdout


@pytest.mark.slow
def test_runtime_reading_an_unreadable_editable_build_directory(world_dir, wheelhouse, seeded_cache):  # noqa: F811
    world_dir.chmod(0o1777)  # shared as /tmp is: no one can replace another's entries
    project = copy_project(SAMPLE, world_dir / "project")
    venv = make_venv(world_dir / "dev")
    env = clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(seeded_cache(world_dir / "cache")))
    run([venv.python, "-m", "pip", "install", "-q", "--find-links", wheelhouse, "-C", f"uwsgi={DEBIAN}", "-e", project],
        env=env)
    site = Path(run([venv.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    builds_dir = Path(json.loads((site / "uwsgi_plugin_hello" / "_editable.json").read_text())["builds_dir"])
    [build] = builds_dir.iterdir()
    build.chmod(0o000)
    # The venv's python is a link to root's interpreter: the other user runs the runtime module with the system one.
    result = as_other_user(["-m", "uwsgi_plugin_hello", "--uwsgi", DEBIAN], env, (site,), cwd=world_dir)
    assert result.returncode == 1 and "Traceback" not in result.stdout, result.stdout
    [line] = result.stdout.splitlines()
    assert line == (f"uwsgi-plugin-backend: error: cannot check this editable install's build directory {builds_dir}: "
                    "Permission denied; install it again with a build directory of your own: pip install -e PROJECT "
                    "-C build-dir=DIR")

    # A build directory in a place others can write to (say, /tmp emptied by a cleaner and
    # the path made again by someone else) is refused: its builds could be anyone's.
    for readable in (build, *builds_dir.parent.glob("builds-*")):  # made 0700 by root (mkdtemp)
        readable.chmod(0o755)
    world_dir.chmod(0o777)
    result = as_other_user(["-m", "uwsgi_plugin_hello", "--uwsgi", DEBIAN], env, (site,), cwd=world_dir)
    assert result.returncode == 1 and "Traceback" not in result.stdout, result.stdout
    assert result.stdout.splitlines() == [
        f"uwsgi-plugin-backend: error: this editable install's build directory {builds_dir} could be changed by another "
        f"user, who could make this uid run their code: {world_dir} is writable by other users (mode 0777); install it "
        "again with a build directory of your own: pip install -e PROJECT -C build-dir=DIR"]
