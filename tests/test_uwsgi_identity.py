"""The runtime module finds, asks and identifies a uwsgi for both the backend
and installed wheels: caches keyed by what the binary is, abi-keys.json with a
format version, and a uwsgi that is a Python script run in the environment its
own interpreter expects."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, build_command, clean_env, copy_project, run

from uwsgi_plugin_backend.target_uwsgi.abi import target_abi
from uwsgi_plugin_backend.target_uwsgi.kit_cache import read_kit
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime


def _same_size_and_mtime_copy(source: Path, target: Path, old: bytes, new: bytes) -> None:
    """``target`` becomes ``source`` with ``old`` replaced by ``new`` (same length), keeping size and mtime."""
    stat = target.stat()
    data = source.read_bytes()
    assert len(old) == len(new) and data.count(old) >= 1
    target.write_bytes(data.replace(old, new))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns


def test_binary_replaced_with_equal_size_and_mtime_gets_a_fresh_answer(tmp_path, debian_uwsgi, machine):
    binary = tmp_path / "uwsgi"
    shutil.copy2(debian_uwsgi, binary)
    assert runtime.binary_abi(str(binary))["version"] == "2.0.21-debian"
    assert read_kit(binary, machine).version == "2.0.21-debian"
    _same_size_and_mtime_copy(debian_uwsgi, binary, b"2.0.21-debian", b"2.0.21-patchd")
    assert runtime.binary_abi(str(binary))["version"] == "2.0.21-patchd"
    assert read_kit(binary, machine).version == "2.0.21-patchd"


def abi_of(uwsgi) -> dict[str, str]:
    """What build selection compares of a uwsgi (runtime.record_fits): its uwsgi.h, CFLAGS and version."""
    answer = runtime.binary_abi(str(uwsgi))
    return {field: answer[field] for field in ("version", "cflags", "dot_h_hash")}


@pytest.mark.slow  # pip's uwsgi
def test_uwsgi_replaced_behind_a_wrapper_script(tmp_path, debian_uwsgi, pip_uwsgi, machine):
    behind = tmp_path / "current-uwsgi"
    behind.symlink_to(debian_uwsgi)
    wrapper = tmp_path / "uwsgi"
    wrapper.write_text(f'#!/bin/sh\nexec "{behind}" "$@"\n')
    wrapper.chmod(0o755)
    assert abi_of(wrapper) == abi_of(debian_uwsgi)
    assert read_kit(wrapper, machine).version == "2.0.21-debian"
    behind.unlink()
    behind.symlink_to(pip_uwsgi)  # the wrapper itself is unchanged
    assert abi_of(wrapper) == abi_of(pip_uwsgi)
    assert read_kit(wrapper, machine).version == read_kit(pip_uwsgi, machine).version != "2.0.21-debian"


@pytest.mark.slow  # pip's uwsgi
def test_wrapper_repointed_at_a_binary_with_another_uwsgi_h(tmp_path, debian_uwsgi, pip_uwsgi, machine):
    """A wrapper that answers --version and --cflags itself (an attack review's did so)
    and hands the rest to the binary behind it: only its --dot-h tells the two apart."""
    for flag in ("version", "cflags"):
        (tmp_path / flag).write_bytes(runtime.ask(str(pip_uwsgi), f"--{flag}"))
    behind = tmp_path / "current-uwsgi"
    behind.symlink_to(debian_uwsgi)
    wrapper = tmp_path / "uwsgi"
    wrapper.write_text(f'#!/bin/sh\ncase "$1" in --version|--cflags) exec cat "{tmp_path}/${{1#--}}";; esac\n'
                       f'exec "{behind}" "$@"\n')
    wrapper.chmod(0o755)
    debian_h, pip_h = read_kit(debian_uwsgi, machine).dot_h, read_kit(pip_uwsgi, machine).dot_h
    assert debian_h != pip_h
    before = read_kit(wrapper, machine)
    assert before.dot_h == debian_h and runtime.binary_abi(str(wrapper))["dot_h_hash"] == before.dot_h_hash
    behind.unlink()
    behind.symlink_to(pip_uwsgi)  # the wrapper and its answers to --version and --cflags are unchanged
    after = read_kit(wrapper, machine)
    assert (after.version, after.cflags) == (before.version, before.cflags)
    assert after.dot_h == pip_h and runtime.binary_abi(str(wrapper))["dot_h_hash"] == after.dot_h_hash != before.dot_h_hash
    assert target_abi(after, machine.cache_dir).key == target_abi(read_kit(pip_uwsgi, machine), machine.cache_dir).key  # (Debian's uwsgi.h with pip's CFLAGS does not compile)


@pytest.mark.parametrize("content", [
    b"[]", b'{"format": 1, "keys": {}}', b'{"/usr/bin/uwsgi": {"identity": [1, 2]}}', b"\xff\xfe not json",
    b'{"format": 2, "keys": {"x": {"key": 1}}}', b'{"format": 2, "keys": []}',
])
def test_abi_keys_json_with_unexpected_content_is_ignored_and_rewritten(content, debian_uwsgi):
    cache = runtime.cache_dir() / "abi-keys.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(content)
    entry = runtime.binary_abi(str(debian_uwsgi))
    assert entry["version"] == "2.0.21-debian"
    written = json.loads(cache.read_text())
    assert written["format"] == runtime.CACHE_FORMAT and entry in written["keys"].values()


@pytest.mark.slow
def test_python_script_uwsgi_runs_without_the_build_environment(monkeypatch, pyuwsgi_venv):
    """What pip's isolated build (and worse) set must not reach pyuwsgi's script; UWSGI_* neither."""
    for name, value in {"PYTHONPATH": "/nonexistent/overlay", "PYTHONNOUSERSITE": "1", "PYTHONHOME": "/nonexistent",
                        "PYTHONSAFEPATH": "1", "PYTHONSTARTUP": "/nonexistent/startup.py",
                        "UWSGI_HTTP_SOCKET": "127.0.0.1:1"}.items():
        monkeypatch.setenv(name, value)
    assert runtime.ask(str(pyuwsgi_venv.uwsgi), "--version").decode().startswith("2.0.")
    assert "+as_shared_library" in runtime.binary_abi(str(pyuwsgi_venv.uwsgi))["summary"]
    assert "PYTHONUSERBASE" in runtime.uwsgi_env({"PYTHONUSERBASE": "/u", "PYTHONPATH": "/p"})


@pytest.mark.slow
def test_ancestor_venv_is_found_when_the_build_runs_in_an_environment_of_its_own(tmp_path, pyuwsgi_venv):
    """`/venv/bin/python -m build`: the hook runs in a temporary env; its ancestor names the venv."""
    build_env = tmp_path / "build-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", build_env], check=True)
    code = ("import sys, subprocess; sys.exit(subprocess.run([sys.argv[1], '-c', "
            "'import sys; sys.path.insert(0, sys.argv[1]); import _uwsgi_plugin as r; print(r.find_default_uwsgi())', "
            "sys.argv[2]]).returncode)")
    runtime_dir = Path(runtime.__file__).parent
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    result = subprocess.run([str(pyuwsgi_venv.python), "-c", code, str(build_env / "bin" / "python"), str(runtime_dir)],
                            capture_output=True, text=True, env=env, check=True)
    assert str(pyuwsgi_venv.uwsgi) in result.stdout
    assert f"installed beside {pyuwsgi_venv.python}, which started this process" in result.stdout


def test_uwsgi_that_another_user_could_change_is_not_run(tmp_path, debian_uwsgi):
    """Issue 21: a root build under a program whose argv[0] lies in another user's
    venv-like directory ran that user's bin/uwsgi as root. A uwsgi the search infers
    passes the cache's trust check or is passed over, and the build log says why."""
    their_env = tmp_path / "their-env"
    (their_env / "bin").mkdir(parents=True)
    (their_env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    ran = tmp_path / "ran"
    theirs = their_env / "bin" / "uwsgi"
    theirs.write_text(f'#!/bin/sh\necho "$@" >> "{ran}"\nexec "{debian_uwsgi}" "$@"\n')
    theirs.chmod(0o755)
    project = copy_project(SAMPLE, tmp_path / "project")

    def build_under_their_program(outdir: Path) -> str:
        """The build, started by a shell whose argv[0] names their python (a command after it: not exec'd)."""
        command = shlex.join(build_command(project, outdir)) + "; exit $?"
        result = run([their_env / "bin" / "python", "-c", command], executable="/bin/sh", env=clean_env())
        assert "Traceback" not in result.stdout
        return result.stdout

    # root's own: trusted, found by the program that started the build, and run.
    log = build_under_their_program(tmp_path / "out-1")
    assert f"building for {theirs} (installed beside {their_env / 'bin' / 'python'}, which started this process" in log
    assert ran.exists()
    ran.unlink()
    run(["chown", "-R", "23456:23456", their_env])
    log = build_under_their_program(tmp_path / "out-2")
    assert not ran.exists(), ran.read_text()
    assert f"building for {theirs}" not in log
    assert (f"{theirs} could be changed by another user, who could make this uid run their code: {theirs} belongs "
            "to uid 23456; not run") in log, log
    assert "building for /usr/bin/uwsgi-core (found on PATH, as /usr/bin/uwsgi)" in log, log


@pytest.mark.slow
def test_pyuwsgi_script_is_identified_by_its_module(tmp_path):
    """pip install -U pyuwsgi rewrites the module behind an identical console script: a fresh answer."""
    from conftest import make_venv

    venv = make_venv(tmp_path / "venv", "pyuwsgi==2.0.29")
    before = runtime.binary_abi(str(venv.uwsgi))
    script = venv.uwsgi.read_bytes()
    venv.pip("install", "-q", "pyuwsgi==2.0.30.post1")
    assert venv.uwsgi.read_bytes() == script
    after = runtime.binary_abi(str(venv.uwsgi))
    assert before["version"].startswith("2.0.29") and after["version"].startswith("2.0.30")
