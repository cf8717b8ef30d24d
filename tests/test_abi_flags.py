"""The ABI promise whatever flags a uWSGI or a build carries: no
plugin code ever runs in a uWSGI it does not fit.

The probe plugin (tests/packages/abi-probe) answers with fields it reads from
uWSGI's structs, and its constructor writes a line when it runs. u1 is pip's
uWSGI 2.0.31, u2 the same with ssl=false; wrapper scripts exec u1 but answer
--cflags with another text, which is all a build sees of a binary."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import PACKAGES, SAMPLE, build_wheel, clean_env, copy_project, plugin_answer, run, the_wheel

from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime

PROBE = PACKAGES / "abi-probe"
CONSTRUCTOR_LINE = "abi-probe: constructor ran"
NOTHING_LEARNED = {"layout_macros": [], "neutral_macros": {}, "consulted": []}


@pytest.mark.parametrize("spelling", ["-DUWSGI_SSL", "-D UWSGI_SSL", "-Wp,-DUWSGI_SSL", "-Xpreprocessor -DUWSGI_SSL",
                                      "'-DUWSGI_SSL'", "-DUWSGI_SSL=1", "-UUWSGI_SSL -DUWSGI_SSL", "-Wp,-UUWSGI_SSL,-DUWSGI_SSL"])
def test_every_spelling_of_a_define_reads_alike(spelling):
    defines, _ = runtime.read_flags(f"-O2 {spelling} -I.")
    assert defines == {"UWSGI_SSL": "1"}
    learned = {**NOTHING_LEARNED, "layout_macros": ["UWSGI_SSL"]}
    assert runtime.abi_lines(f"-O2 {spelling}", learned) == ["-DUWSGI_SSL=1"]


@pytest.mark.parametrize("spelling", ["-DUWSGI_SSL -UUWSGI_SSL", "-DUWSGI_SSL -U UWSGI_SSL", "-DUWSGI_SSL -Wp,-UUWSGI_SSL", ""])
def test_a_later_undefine_wins(spelling):
    """Undone, the macro is undefined; that it was undone counts too (it may be a built-in)."""
    assert runtime.read_flags(spelling)[0].get("UWSGI_SSL") is None
    assert runtime.abi_lines(spelling, {**NOTHING_LEARNED, "layout_macros": ["UWSGI_SSL"]}) == (["-UUWSGI_SSL"] if spelling else [])


def test_options_count_unless_known_to_be_neutral():
    cflags = "-O2 -g -Wall -fPIC -pthread -I/x -isystem /y -fstack-protector-strong -fpack-struct=4 -fshort-enums -m32 -include a.h"
    assert runtime.abi_lines(cflags, NOTHING_LEARNED) == ["-fpack-struct=4", "-fshort-enums", "-m32", "-include a.h"]
    # In order: a later -fpack-struct undoes an earlier one, so the two orders are two ABIs.
    assert runtime.abi_lines("-fpack-struct=16 -fpack-struct=4", NOTHING_LEARNED) != runtime.abi_lines(
        "-fpack-struct=4 -fpack-struct=16", NOTHING_LEARNED)


@pytest.mark.parametrize("cflags", ["-Wp,-MD,-UUWSGI_SSL", "-Wp,-MMD,-UUWSGI_SSL", "-l -UUWSGI_SSL", "-Xlinker -UUWSGI_SSL",
                                    "-o -UUWSGI_SSL", "-imultilib -UUWSGI_SSL", "-dumpbase-ext -UUWSGI_SSL",
                                    "-Wp,-dumpbase,-UUWSGI_SSL", "-Wp,-imultilib,-UUWSGI_SSL"])
def test_the_argument_of_an_option_is_no_define(cflags):
    """gcc -DUWSGI_SSL -Wp,-MD,-UUWSGI_SSL keeps UWSGI_SSL: -MD names a file there."""
    assert runtime.read_flags(f"-DUWSGI_SSL {cflags}")[0] == {"UWSGI_SSL": "1"}


def test_undoing_a_builtin_counts():
    learned = {**NOTHING_LEARNED, "consulted": ["__linux__", "__HURD__"]}
    assert runtime.abi_lines("-U__linux__ -D__HURD__", learned) == ["-D__HURD__=1", "-U__linux__"]


def test_macros_count_by_what_the_build_learned():
    learned = {**NOTHING_LEARNED, "layout_macros": ["UWSGI_SSL"], "consulted": ["_FILE_OFFSET_BITS", "UWSGI_SSL", "UWSGI_VERSION"],
               "neutral_macros": {"UWSGI_VERSION": '"2.0.31"', "UWSGI_XML": None, "UWSGI_MAX": "4"}}
    # Not consulted by uwsgi.h's compile at all: cannot change what it declares.
    assert runtime.abi_lines("-DUWSGI_JSON_JANSSON -DMY_OWN=3", learned) == []
    # Another version string is a string too; 1 is what the build tried for UWSGI_XML.
    assert runtime.abi_lines('-DUWSGI_VERSION=\'"2.1"\' -DUWSGI_XML', learned) == []
    # A number where the build had another, a value it never tried, a consulted macro it never tried: they count.
    assert runtime.abi_lines("-DUWSGI_MAX=5 -DUWSGI_XML=2 -D_FILE_OFFSET_BITS=64", learned) == [
        "-DUWSGI_MAX=5", "-DUWSGI_XML=2", "-D_FILE_OFFSET_BITS=64"]


def wrapper(directory: Path, target: Path, cflags: str) -> Path:
    """A uwsgi that is ``target`` but answers ``--cflags`` with ``cflags``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "uwsgi"
    (directory / "cflags").write_text(cflags + "\n")
    script.write_text(f'#!/bin/sh\nif [ "$1" = --cflags ]; then cat "{directory}/cflags"; exit 0; fi\nexec "{target}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def key_of(uwsgi: Path) -> str:
    out = run([sys.executable, "-m", "uwsgi_plugin_backend", "info", "--uwsgi", uwsgi], env=clean_env()).stdout
    [line] = [line for line in out.splitlines() if line.startswith("ABI key:")]
    return line.split()[-1]


def cflags_of(uwsgi: Path) -> str:
    return run([uwsgi, "--cflags"], env=clean_env()).stdout.strip()


@pytest.mark.slow
def test_spellings_share_the_key_of_what_gcc_reads(tmp_path, pip_variants):
    u1, u2 = pip_variants["default"], pip_variants["nossl"]
    cflags = cflags_of(u1)
    assert "-DUWSGI_SSL " in cflags + " "
    keys = {"u1": key_of(u1), "u2": key_of(u2)}
    for name, spelled in [("two-words", "-D UWSGI_SSL"), ("wp", "-Wp,-DUWSGI_SSL")]:
        keys[name] = key_of(wrapper(tmp_path / name, u1, (cflags + " ").replace("-DUWSGI_SSL ", spelled + " ")))
    keys["undefined-later"] = key_of(wrapper(tmp_path / "undef", u1, cflags + " -UUWSGI_SSL"))
    assert keys["two-words"] == keys["wp"] == keys["u1"] != keys["u2"], keys
    assert keys["undefined-later"] not in (keys["u1"],), keys
    for option in ("-fpack-struct=4", "-fshort-enums"):
        assert key_of(wrapper(tmp_path / option, u1, f"{cflags} {option}")) != keys["u1"], option


@pytest.mark.slow
def test_two_word_define_and_u2_get_two_builds_and_u2_reads_its_own(tmp_path, pip_variants):
    """The wheel for the `-D UWSGI_SSL` wrapper and u2 were one build, which crashed u2."""
    u1, u2 = pip_variants["default"], pip_variants["nossl"]
    spelled = wrapper(tmp_path / "spelled", u1, (cflags_of(u1) + " ").replace("-DUWSGI_SSL ", "-D UWSGI_SSL "))
    result = build_wheel(copy_project(PROBE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={spelled}", f"-Cuwsgi={u2}")
    assert "one build serves both" not in result.stdout
    site = tmp_path / "site"
    zipfile.ZipFile(the_wheel(tmp_path / "out")).extractall(site)
    assert len(list(site.glob("uwsgi_plugin_probe/uwsgi_builds/*/build.json"))) == 2
    for uwsgi in (u1, u2):
        directory = run([sys.executable, "-m", "uwsgi_plugin_probe", "--uwsgi", uwsgi], cwd=site, env=clean_env()).stdout.strip()
        answer = plugin_answer(uwsgi, directory, "probe", 251, tmp_path / f"{uwsgi.parent.parent.name}.log",
                               "--buffer-size", "12345", "--processes", "2")
        assert answer.startswith("buffer_size=12345 numproc=2 mywid="), answer


@pytest.mark.slow
def test_undefined_later_build_is_not_chosen_for_u1(tmp_path, pip_variants):
    """Case 3: a build for a uwsgi whose flags end in -UUWSGI_SSL is no build for u1."""
    u1 = pip_variants["default"]
    undefined = wrapper(tmp_path / "undef", u1, cflags_of(u1) + " -UUWSGI_SSL")
    build_wheel(copy_project(PROBE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={undefined}")
    site = tmp_path / "site"
    zipfile.ZipFile(the_wheel(tmp_path / "out")).extractall(site)
    result = run([sys.executable, "-m", "uwsgi_plugin_probe", "--uwsgi", u1], cwd=site, env=clean_env(), check=False)
    assert result.returncode == 1 and "has no build of its plugins for" in result.stdout, result.stdout


def load(uwsgi: Path, plugins_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(uwsgi), "--http-socket", "127.0.0.1:0", "--plugins-dir", str(plugins_dir), "--need-plugin", "probe"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(), timeout=30)


@pytest.mark.slow
def test_no_plugin_code_runs_in_a_uwsgi_it_does_not_fit(tmp_path, pip_variants, debian_uwsgi):
    """Case 5: the probe's constructor must not run before the refusal; u1 and u2 refuse each other's build too."""
    u1, u2 = pip_variants["default"], pip_variants["nossl"]
    build_wheel(copy_project(PROBE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={u1}")
    site = tmp_path / "site"
    zipfile.ZipFile(the_wheel(tmp_path / "out")).extractall(site)
    [build] = site.glob("uwsgi_plugin_probe/uwsgi_builds/*")
    assert (build / "probe_plugin.real.so").is_file()
    for uwsgi in (debian_uwsgi, u2):
        result = load(uwsgi, build)
        assert result.returncode == 1, result.stdout  # a refusal, not a signal
        assert "uwsgi-plugin-backend: refusing plugin probe: it was built for uWSGI 2.0.31" in result.stdout
        assert CONSTRUCTOR_LINE not in result.stdout
    # In the uwsgi it fits, the loader opens the real plugin: its constructor runs and it reads the right fields.
    answer = plugin_answer(u1, build, "probe", 251, tmp_path / "u1.log", "--buffer-size", "12345")
    assert answer.startswith("buffer_size=12345 numproc=1 mywid=1 pid="), answer
    assert CONSTRUCTOR_LINE in (tmp_path / "u1.log").read_text()


# (environment, uwsgiplugin.py's lists, what the one error line names): the cases a review's attacks found.
LAYOUT_CHANGES = {
    "env-cflags": ({"CFLAGS": "-fpack-struct=4"}, {}, "compiled with -fpack-struct=4 (from $CFLAGS)"),
    "plugin-cflags": ({}, {"CFLAGS": ["-UUWSGI_SSL"]}, "compiled with -UUWSGI_SSL (from CFLAGS, LDFLAGS or LIBS in uwsgiplugin.py)"),
    "builtins": ({}, {"CFLAGS": ["-U__linux__", "-D__HURD__"]}, "compiled with "),
    "cc": ({"CC": "gcc -fpack-struct=4"}, {}, "compiled with -fpack-struct=4 (from $CC)"),
    "env-ldflags": ({"LDFLAGS": "-fpack-struct=4"}, {}, "compiled with -fpack-struct=4 (from $LDFLAGS)"),
    "plugin-libs": ({}, {"LIBS": ["-UUWSGI_SSL"]}, "compiled with -UUWSGI_SSL (from CFLAGS, LDFLAGS or LIBS in uwsgiplugin.py)"),
    "shell-expansion": ({"PROBE_EXTRA": " -fpack-struct=4"}, {"CFLAGS": ["-O2$PROBE_EXTRA"]}, "compiled with -fpack-struct=4"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(LAYOUT_CHANGES))
def test_plugin_flags_that_change_a_layout_fail_the_build(tmp_path, pip_uwsgi, case):
    """Every word the plugin's compile gets is checked: CFLAGS, LDFLAGS and CC
    from the environment, CFLAGS and LIBS of uwsgiplugin.py, after the shell."""
    environment, lists, named = LAYOUT_CHANGES[case]
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "uwsgiplugin.py").write_text("".join(f"{key} = {value!r}\n" for key, value in
                                                    {"NAME": "hello", "GCC_LIST": ["hello"], **lists}.items()))
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", env=clean_env(**environment), check=False)
    assert result.returncode != 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("uwsgi-plugin-backend: error:")]
    assert f"plugin hello is {named}" in line and "changes uwsgi.h's " in line, line
    assert "Traceback" not in result.stdout
    assert not list(tmp_path.glob("out/*.whl"))


@pytest.mark.slow
def test_a_flag_the_binary_has_added_again_is_checked(tmp_path, pip_uwsgi):
    """A uwsgi built with -fpack-struct=4 -fpack-struct=16 has natural layouts; a
    plugin adding -fpack-struct=4 again is packed, though the binary's flags name it."""
    twice = wrapper(tmp_path / "twice", pip_uwsgi, cflags_of(pip_uwsgi) + " -fpack-struct=4 -fpack-struct=16")
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "uwsgiplugin.py").write_text("NAME = 'hello'\nGCC_LIST = ['hello']\nCFLAGS = ['-fpack-struct=4']\n")
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={twice}", check=False)
    assert result.returncode != 0 and "plugin hello is compiled with -fpack-struct=4" in result.stdout, result.stdout


@pytest.mark.slow
def test_a_uwsgi_h_of_the_project_fails_the_build(tmp_path, pip_uwsgi):
    """The plugin's #include "uwsgi.h" would find the project's own copy first."""
    project = copy_project(SAMPLE, tmp_path / "p")
    dot_h = run([pip_uwsgi, "--dot-h"], env=clean_env()).stdout
    assert "#ifdef UWSGI_CAP" in dot_h
    (project / "uwsgi.h").write_text(dot_h.replace("#ifdef UWSGI_CAP", "#ifdef UWSGI_CAP_NOT_HERE"))  # no capabilities
    (project / "hello.c").write_text((project / "hello.c").read_text().replace("#include <uwsgi.h>", '#include "uwsgi.h"'))
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("uwsgi-plugin-backend: error:")]
    assert "would be compiled with headers of the project in the place of uwsgi.h's own (uwsgi.h)" in line, line


@pytest.mark.slow
def test_a_project_header_named_like_a_system_header_fails_the_build(tmp_path, pip_uwsgi):
    """The binary's -I. makes the plugin's directory come first: a termios.h there
    is what uwsgi.h's #include <termios.h> finds (a review crashed uWSGI so)."""
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "termios.h").write_text("#include_next <termios.h>\n#undef UWSGI_CAP\n")
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("uwsgi-plugin-backend: error:")]
    assert "headers of the project in the place of uwsgi.h's own (termios.h)" in line, line
    assert not list(tmp_path.glob("out/*.whl"))


@pytest.mark.slow
def test_neutral_plugin_flags_build(tmp_path, pip_uwsgi):
    """Flags that keep every layout (a define uwsgi.h never consults, an optimisation level) build as before."""
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "uwsgiplugin.py").write_text((project / "uwsgiplugin.py").read_text().replace("CFLAGS = []", "CFLAGS = ['-DHELLO_EXTRA=1', '-O3']"))
    build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", env={**clean_env(), "CFLAGS": "-fno-strict-aliasing"})
    site = tmp_path / "site"
    zipfile.ZipFile(the_wheel(tmp_path / "out")).extractall(site)
    directory = run([sys.executable, "-m", "uwsgi_plugin_hello", "--uwsgi", pip_uwsgi], cwd=site, env=clean_env()).stdout.strip()
    assert plugin_answer(pip_uwsgi, directory, "hello", 250, tmp_path / "log") == "Hello from a wheel"
    assert os.path.isfile(os.path.join(directory, "hello_plugin.real.so"))


define_words = st.builds(
    lambda spelling, name, value: spelling.format(name + ("" if value is None else f"={value}")),
    st.sampled_from(["-D{}", "-D {}", "-U{}", "-U {}", "-Wp,-D{}", "-Wp,-U{}", "-Wp,-D{},-UZZ", "-Xpreprocessor -D{}",
                     "-Xpreprocessor -U{}", "'-D{}'"]),
    st.sampled_from(["ZZ", "UWSGI_SSL", "UWSGI_PCRE"]),
    st.one_of(st.none(), st.sampled_from(["1", "2", "'\"s\"'", "x"])),
)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.one_of(define_words, st.sampled_from(["-O2", "-I.", "-g"])), max_size=8))
def test_defines_read_as_gcc_reads_them(tmp_path_factory, words):
    """read_flags() against gcc itself: the macros gcc -dM reports for the same command line."""
    cflags = " ".join(words)
    result = subprocess.run(["gcc", *runtime.shell_words(cflags), "-E", "-dM", "-x", "c", "/dev/null"],
                            capture_output=True, text=True, check=True)
    seen = {}
    for line in result.stdout.splitlines():
        name, _, value = line[len("#define "):].partition(" ")
        if name in ("ZZ", "UWSGI_SSL", "UWSGI_PCRE"):
            seen[name] = value
    assert {name: value for name, value in runtime.read_flags(cflags)[0].items() if value is not None} == seen, cflags


@pytest.mark.slow
@pytest.mark.parametrize("extra", ["-fpack-struct=4", "-fshort-enums", "-UUWSGI_SSL", "-D UWSGI_DEBUG_BUFFER"])
def test_u1_refuses_a_build_for_other_flags_before_any_plugin_code(tmp_path, pip_variants, extra):
    """Cases 2 and 3 at load time: a wrapper of u1 that answers --cflags with one flag
    more gets a build compiled with it; u1 itself (whose real CFLAGS the loader
    reads) refuses that build with one line, before the probe's constructor runs."""
    u1 = pip_variants["default"]
    other = wrapper(tmp_path / "other", u1, f"{cflags_of(u1)} {extra}")
    build_wheel(copy_project(PROBE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={other}")
    site = tmp_path / "site"
    zipfile.ZipFile(the_wheel(tmp_path / "out")).extractall(site)
    chosen = run([sys.executable, "-m", "uwsgi_plugin_probe", "--uwsgi", u1], cwd=site, env=clean_env(), check=False)
    assert chosen.returncode == 1 and "has no build of its plugins for" in chosen.stdout, chosen.stdout
    [build] = site.glob("uwsgi_plugin_probe/uwsgi_builds/*")
    result = load(u1, build)
    assert result.returncode == 1, result.stdout  # a refusal, not a signal
    assert "uwsgi-plugin-backend: refusing plugin probe" in result.stdout
    assert CONSTRUCTOR_LINE not in result.stdout
