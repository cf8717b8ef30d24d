"""The command line against real installed plugin wheels and a real uwsgi,
editable installs, the validate-pyproject schema, and the build log."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import (
    PACKAGES,
    SAMPLE,
    Venv,
    build_wheel,
    clean_env,
    copy_project,
    http_get,
    kept_uwsgi_wheel,
    make_venv,
    run,
    running_uwsgi,
    tree_digest,
)

BIN = Path(sys.executable).parent


def cli(venv: Venv, *args, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run([venv.root / "bin" / "uwsgi-plugin-backend", *args], check=check, env=clean_env(), cwd=cwd)


def serve(uwsgi: Path, args: list[str], log: Path, greeting: str) -> str:
    with running_uwsgi(uwsgi, *args, "--http-socket-modifier1", "250", "--hello-greeting", greeting, log=log) as url:
        return http_get(url)[2]


def test_list_shows_installed_plugins(tool_venv):
    out = cli(tool_venv, "list").stdout
    [row] = [line for line in out.splitlines() if line.startswith("hello ")]
    assert row.split()[:3] == ["hello", "uwsgi-plugin-hello", "1.0.0"]
    assert row.endswith("yes") and "uwsgi_plugin_hello/uwsgi_builds/abi_a3_" in row


def test_args_load_plugin_even_with_spaces_in_paths(tool_venv, tmp_path):
    line = cli(tool_venv, "args").stdout.strip()
    words = shlex.split(line)  # what `uwsgi $(...)` under eval, or a shell, gets
    assert words[0] == "--plugins-dir" and " " in words[1] and words[2:] == ["--need-plugin", "hello"]
    assert serve(tool_venv.uwsgi, words, tmp_path / "log", "Hello via args") == "Hello via args"
    # And through a real shell with eval, as docs/operators.md shows it: the same words, spaces kept.
    command = shlex.quote(str(tool_venv.root / "bin" / "uwsgi-plugin-backend"))
    script = f'eval "set -- $({command} args hello)"; printf "%s\\n" "$@"'
    assert run(["sh", "-c", script], env=clean_env()).stdout.splitlines() == words


def test_ini_snippet_loads_plugin(tool_venv, tmp_path):
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(cli(tool_venv, "ini", "hello").stdout)
    assert ini.read_text().startswith("[uwsgi]\nplugins-dir = ")
    assert serve(tool_venv.uwsgi, ["--ini", str(ini)], tmp_path / "log", "Hello via ini") == "Hello via ini"


def test_args_refuses_unknown_plugin(tool_venv):
    result = cli(tool_venv, "args", "nosuch", check=False)
    assert result.returncode == 1
    assert "uwsgi-plugin-backend: error: no installed uWSGI plugin named nosuch (installed: hello)" in result.stdout


def test_info_names_uwsgi_abi_and_cache(tool_venv):
    out = cli(tool_venv, "info").stdout
    assert f"uwsgi:      {tool_venv.uwsgi}" in out
    assert "installed beside the interpreter" in out
    assert re.search(r"ABI key:    a3-[0-9a-f]{16}", out)
    assert "kit cached: " in out and "/kits/" in out


def test_info_without_a_writable_cache(tool_venv):
    result = run([tool_venv.root / "bin" / "uwsgi-plugin-backend", "info"], env=clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR="/proc/no-cache"))
    assert "kit cached: not cached (/proc/no-cache/kits/" in result.stdout and "Traceback" not in result.stdout


def test_init_then_pip_wheel(tool_venv, tmp_path, wheelhouse):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    for name in ("hello.c", "uwsgiplugin.py"):
        (plugin / name).write_bytes((SAMPLE / name).read_bytes())
    written = cli(tool_venv, "init", "plugin", cwd=tmp_path).stdout
    assert "wrote" in written
    # The next step it names is a path: a bare `pip install plugin` would fetch PyPI's "plugin".
    [where] = re.findall(r"next: pip install (\S+)", written)
    assert where == "./plugin"
    again = cli(tool_venv, "init", plugin, check=False)
    assert again.returncode == 1 and "already exists" in again.stdout
    tool_venv.pip("wheel", "-q", "--no-deps", "--find-links", wheelhouse, "-w", tmp_path / "out", where, cwd=tmp_path)
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert wheel.name.startswith("uwsgi_plugin_hello-0.1.0-py3-none-manylinux")


def test_init_where_pyproject_is_a_dangling_link(tmp_path):
    """Issue 21: a traceback, or a pyproject.toml written wherever the link pointed."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    for name in ("hello.c", "uwsgiplugin.py"):
        (plugin / name).write_bytes((SAMPLE / name).read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (plugin / "pyproject.toml").symlink_to(elsewhere / "pyproject.toml")
    before = tree_digest(tmp_path)
    result = run([BIN / "uwsgi-plugin-backend", "init", plugin], check=False, env=clean_env())
    assert result.returncode == 1 and "Traceback" not in result.stdout, result.stdout
    assert result.stdout.strip() == (
        f"uwsgi-plugin-backend: error: {plugin}/pyproject.toml is a symbolic link to {elsewhere}/pyproject.toml, which "
        "does not exist; init writes a new file only, never through a link: remove the link and run init again")
    assert tree_digest(tmp_path) == before


def test_editable_install_rebuild_serves_changed_source(tmp_path, wheelhouse):
    venv = make_venv(tmp_path / "dev")
    venv.install(kept_uwsgi_wheel(), "--find-links", wheelhouse, "uwsgi-plugin-backend")
    project = copy_project(SAMPLE, tmp_path / "project")
    venv.pip("install", "-q", "--find-links", wheelhouse, "-e", project)
    directory = run([venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    assert not directory.startswith(str(venv.root))  # builds live in the editable build directory
    with running_uwsgi(venv.uwsgi, "--plugins-dir", directory, "--plugin", "hello", "--http-socket-modifier1", "250",
                       log=tmp_path / "a.log") as url:
        assert http_get(url)[2] == "Hello from a wheel"
    source = project / "hello.c"
    source.write_text(source.read_text().replace("Hello from a wheel", "Hello from the working tree"))
    run([venv.root / "bin" / "uwsgi-plugin-backend", "rebuild", project], env=clean_env())
    directory = run([venv.python, "-m", "uwsgi_plugin_hello"], env=clean_env()).stdout.strip()
    with running_uwsgi(venv.uwsgi, "--plugins-dir", directory, "--plugin", "hello", "--http-socket-modifier1", "250",
                       log=tmp_path / "b.log") as url:
        assert http_get(url)[2] == "Hello from the working tree"


def test_validate_pyproject_uses_the_schema(tmp_path):
    assert "Valid file" in run([BIN / "validate-pyproject", SAMPLE / "pyproject.toml"]).stdout
    bad = tmp_path / "pyproject.toml"
    bad.write_text((SAMPLE / "pyproject.toml").read_text() + '\n[tool.uwsgi-plugin]\nplugin = ["."]\n')
    result = run([BIN / "validate-pyproject", bad], check=False)
    assert result.returncode != 0 and "`tool.uwsgi-plugin` must not contain {'plugin'} properties" in result.stdout


def test_build_log_default_and_verbose(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "multi", tmp_path / "multi")
    quiet = build_wheel(project, tmp_path / "a", f"-Cuwsgi={pip_uwsgi}").stdout
    steps = [line for line in quiet.splitlines() if line.startswith("uwsgi-plugin-backend:")]
    assert any("building for" in line for line in steps)
    assert any("build kit" in line for line in steps)
    assert any("compiling 4 of 4 sources" in line for line in steps)
    assert any("platform tag manylinux" in line for line in steps)
    assert any("wrote uwsgi_plugin_multi-1.0.0-" in line for line in steps)
    assert "build time:" not in quiet and " -MMD " not in quiet and "\033[" not in quiet  # no colour off a terminal
    verbose = build_wheel(project, tmp_path / "b", f"-Cuwsgi={pip_uwsgi}", "-Cbuild.verbose=true").stdout
    assert re.search(r"gcc -fPIC .* -c \./beta\.c -o \S+/beta\.c-[0-9a-f]+\.o -MMD", verbose)
    assert re.search(r"gcc -fPIC -shared -o multi_plugin\.so ", verbose)


def test_compile_error_names_the_failing_file_first(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "multi", tmp_path / "multi")
    (project / "beta.c").write_text("const char *beta(void) { return undeclared_thing; }\n")
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    message = result.stdout.split("uwsgi-plugin-backend: error: ", 1)[1]
    assert message.startswith("./beta.c failed to compile (exit status 1) in ")
    assert "beta.c:1:" in message and "undeclared_thing" in message and "the command was (shortened; -C build.verbose=true shows it whole): gcc" in message
