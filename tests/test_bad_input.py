"""Bad input: one clear message naming the fix, non-zero exit, no traceback,
no wheel left behind, and the source tree as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, assert_one_clean_failure, build_wheel, clean_env, copy_project, run, tree_digest

SAMPLE_PYPROJECT = (SAMPLE / "pyproject.toml").read_text()


def without_entry_point(project: Path) -> None:
    text = SAMPLE_PYPROJECT.replace('[project.entry-points."uwsgi.plugins"]\nhello = "uwsgi_plugin_hello:plugin_dir"\n', "")
    (project / "pyproject.toml").write_text(text)


def with_table(body: str):
    def change(project: Path) -> None:
        (project / "pyproject.toml").write_text(SAMPLE_PYPROJECT + f"\n[tool.uwsgi-plugin]\n{body}\n")
    return change


def with_uwsgiplugin(text: str):
    def change(project: Path) -> None:
        (project / "uwsgiplugin.py").write_text(text)
    return change


def without_uwsgiplugin(project: Path) -> None:
    (project / "uwsgiplugin.py").unlink()


def with_compile_error(project: Path) -> None:
    source = project / "hello.c"
    source.write_text(source.read_text().replace("return UWSGI_OK;", "return UWSGI_OK  /* missing semicolon */"))


def with_missing_header(project: Path) -> None:
    source = project / "hello.c"
    source.write_text("#include <no_such_feature_header.h>\n" + source.read_text())


CASES = {
    "unknown key": (with_table('plugin = ["."]'), r"unknown key 'plugin' in \[tool.uwsgi-plugin\].*known keys: abi-variants, allow-outside-sources, package, pin-uwsgi, plugins, ship-sources, strip, uwsgi"),
    "wrong type": (with_table('plugins = "."'), r"tool.uwsgi-plugin.plugins must be a list of strings, got '\.' \(a string\)"),
    "NUL byte": (with_table('plugins = ["a\\u0000b"]'), r"tool.uwsgi-plugin.plugins in pyproject.toml holds a NUL byte \('a\\x00b'\); no path or name can hold one: remove it"),
    "missing entry point": (without_entry_point, r'declares no \'uwsgi.plugins\' entry point for the plugin\(s\) hello.*\[project.entry-points."uwsgi.plugins"\]\nhello = "uwsgi_plugin_hello:plugin_dir"'),
    "no uwsgiplugin.py": (without_uwsgiplugin, r"has no uwsgiplugin.py"),
    "syntax error": (with_uwsgiplugin("NAME = 'hello'\nGCC_LIST = ['hello'\n"), r"uwsgiplugin.py, line \d+: syntax error"),
    "no NAME": (with_uwsgiplugin("GCC_LIST = ['hello']\n"), r"uwsgiplugin.py does not set NAME .*NAME = 'hello'"),
    "missing source": (with_uwsgiplugin("NAME = 'hello'\nGCC_LIST = ['hello', 'nothere']\n"), r"lists 'nothere' in GCC_LIST, but .*nothere.c does not exist"),
    "missing header": (with_missing_header, r"no_such_feature_header.h is not installed: install the development package"),
    "compile error": (with_compile_error, r"error: \./hello\.c failed to compile \(exit status 1\) in /.*:\n(.*)hello\.c:\d+:\d+: error: expected .;.(.*)the command was \(shortened; -C build.verbose=true shows it whole\): \S*gcc -fPIC -shared -o hello_plugin\.so \$\(uwsgi --cflags\) "),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_project(case, tmp_path, outdir, pip_uwsgi):
    change, pattern = CASES[case]
    project = copy_project(SAMPLE, tmp_path / "project")
    change(project)
    before = tree_digest(project)
    # checked: the first hook a frontend calls, get_requires_for_build_wheel, reads the project too.
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_uwsgi}", check=False, checked=True)
    assert_one_clean_failure(result, project, before, outdir, pattern)


def test_no_uwsgi_found(tmp_path, outdir):
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    empty_path = tmp_path / "empty-bin"
    empty_path.mkdir()
    result = build_wheel(project, outdir, check=False, env=clean_env(PATH=str(empty_path)))
    assert_one_clean_failure(
        result, project, before, outdir,
        r"no uwsgi binary found(.*)Looked in:(.*)bin/uwsgi(.*)-C uwsgi=(.*)UWSGI_PLUGIN_BACKEND_UWSGI=(.*)\[tool.uwsgi-plugin\] uwsgi =",
    )


@pytest.mark.parametrize("how", ["config setting", "environment"])
def test_named_binary_is_not_uwsgi(how, tmp_path, outdir):
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    if how == "config setting":
        result = build_wheel(project, outdir, "-Cuwsgi=/bin/true", check=False)
    else:
        result = build_wheel(project, outdir, check=False, env=clean_env(UWSGI_PLUGIN_BACKEND_UWSGI="/bin/true"))
    assert_one_clean_failure(result, project, before, outdir, r"/bin/true is not a uwsgi binary: `true --version` printed .*, not what uwsgi prints")


def test_nul_byte_in_build_dir(tmp_path, outdir):
    """Issue 21: a traceback from mkdir. A command line cannot carry a NUL byte; a pip configuration file can."""
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    config = tmp_path / "pip.conf"
    config.write_bytes(b"[wheel]\nconfig-settings = build-dir=" + bytes(tmp_path / "build") + b"\0x\n")
    env = clean_env(PIP_CONFIG_FILE=str(config), UWSGI_PLUGIN_BACKEND_UWSGI="/usr/bin/uwsgi-core")
    result = run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", outdir, project],
                 check=False, env=env)
    assert_one_clean_failure(result, project, before, outdir,
                             r"-C build-dir holds a NUL byte \('/.*/build\\x00x'\); no path or name can hold one: remove it")
    assert not (tmp_path / "build").exists()


def test_named_binary_missing(tmp_path, outdir):
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    result = build_wheel(project, outdir, "-Cuwsgi=/no/such/uwsgi", check=False)
    assert_one_clean_failure(result, project, before, outdir, r"the uwsgi named by -C uwsgi does not exist: /no/such/uwsgi")
