"""The uwsgi-embedded build: faithful to `uwsgi --build-plugin`, out of tree,
every uwsgiplugin.py feature, paths with spaces, plugins from uWSGI's tree."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    SAMPLE,
    assert_one_clean_failure,
    build_wheel,
    clean_env,
    copy_project,
    installed_plugin,
    plugin_answer,
    recorded_calls,
    recording_cc,
    run,
    tree_digest,
)

SOURCE_SUFFIXES = (".c", ".cc")


def prepare_features(project: Path) -> Path:
    """The object and the static library GCC_LIST names, made before the build as a project would ship them."""
    run(["gcc", "-fPIC", "-c", "-x", "c", "object.c.in", "-o", "prebuilt.o"], cwd=project)
    run(["gcc", "-fPIC", "-c", "-x", "c", "archive.c.in", "-o", "archive.o"], cwd=project)
    run(["ar", "rcs", "libarchive.a", "archive.o"], cwd=project)
    return project


@pytest.mark.parametrize("fixture, build_dir", [("sample", False), ("sample", True), ("features", False)])
def test_compile_and_link_flags_equal_uwsgi_build_plugin(tmp_path, pip_uwsgi, fixture, build_dir):
    recorder = recording_cc()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    source = SAMPLE if fixture == "sample" else PACKAGES / "features"
    plugin = copy_project(source, tmp_path / "plugin")
    if fixture == "features":
        prepare_features(plugin)
    kept = [f"-Cbuild-dir={tmp_path / 'build-dir'}"] if build_dir else []
    build_wheel(plugin, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", *kept, env=clean_env(CC=str(recorder), CC_RECORD_DIR=str(ours)))
    # As plugin authors run it: in the plugin directory (GCC_LIST's .a entries are relative to it).
    run([pip_uwsgi, "--build-plugin", "."], cwd=plugin, env=clean_env(CC=str(recorder), CC_RECORD_DIR=str(theirs)))

    # uwsgi's one gcc line: -fPIC -shared -o NAME_plugin.so CFLAGS SOURCES LDFLAGS LIBS
    [their_call] = recorded_calls(theirs)
    sources = [i for i, arg in enumerate(their_call) if arg.endswith(SOURCE_SUFFIXES)]
    their_cflags = their_call[4:sources[0]]
    assert their_call[:4] == ["-fPIC", "-shared", "-o", f"{'hello' if fixture == 'sample' else 'features'}_plugin.so"]
    assert sources == list(range(sources[0], sources[-1] + 1))

    # The backend's own probes of the compiler (learning uwsgi.h's layouts, finding libraries) aside.
    calls = [call for call in recorded_calls(ours) if call != ["--version"]
             and not any("/uwsgi-abi-" in arg or arg.startswith("-print-file-name=") for arg in call)]
    [prefix_map] = {arg for call in calls for arg in call if arg.startswith("-ffile-prefix-map=")}
    assert prefix_map.endswith("=.")  # the random build directory mapped away: reproducible builds
    # The loader (plugin_build/loader.py) is the backend's own; the real plugin binds its symbols to itself
    # and names its build in its SONAME (loader.real_plugin_link_flags).
    calls = [[arg for arg in call if arg != prefix_map] for call in calls if "loader.c" not in call]
    [link] = [call for call in calls if "-shared" in call]
    link.remove("-Wl,-Bsymbolic")
    [soname] = [arg for arg in link if arg.startswith("-Wl,-soname,")]
    assert soname.startswith(f"-Wl,-soname,{'hello' if fixture == 'sample' else 'features'}_plugin.real.so.a3-")
    link.remove(soname)
    compiles = [call for call in calls if "-c" in call]
    if len(sources) == 1 and not build_dir:
        # A lone source with nothing to keep: uwsgi's own single gcc call is the fastest.
        assert compiles == [] and link == their_call
        return
    # One compile per source: uwsgi's CFLAGS, then -c SOURCE -o OBJECT and the dependency file.
    assert len(compiles) == len(sources)
    objects = {}
    for call in compiles:
        assert call[:1 + len(their_cflags)] == ["-fPIC", *their_cflags]
        rest = call[1 + len(their_cflags):]
        assert rest[0] == "-c" and rest[2] == "-o" and rest[4:6] == ["-MMD", "-MF"] and len(rest) == 7
        objects[Path(rest[1]).name] = rest[3]
    # One link: uwsgi's line with each source's object in its place, and for C++ sources
    # the C++ runtime after it all, as g++ links (uwsgi links with gcc).
    expected = [objects[Path(arg).name] if i in sources else arg for i, arg in enumerate(their_call)]
    cxx_runtime = ["-lstdc++", "-lm"] if any(their_call[i].endswith(".cc") for i in sources) else []
    assert link == expected + cxx_runtime


def test_source_tree_unchanged(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    assert tree_digest(project) == before
    assert not (project / ".uwsgi_plugins_builder").exists()


def test_every_uwsgiplugin_feature(tmp_path, pip_uwsgi):
    project = prepare_features(copy_project(PACKAGES / "features", tmp_path / "features"))
    before = tree_digest(project)

    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    assert "post_build ran for features" in result.stdout
    assert tree_digest(project) == before

    shared_object = installed_plugin(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_features", "features")
    section = run(["objcopy", "--dump-section", f"uwsgi={tmp_path / 'section'}", shared_object, tmp_path / "copy.so"])
    assert (tmp_path / "section").read_text() == "requires=python\n", section.stdout
    assert plugin_answer(pip_uwsgi, shared_object.parent, "features", 251, tmp_path / "log") == "c+cc+o+a+cflags+4"


def test_paths_with_spaces(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "a dir with spaces" / "hello plugin")
    out = tmp_path / "out dir with spaces"
    build_wheel(project, out, f"-Cuwsgi={pip_uwsgi}")
    shared_object = installed_plugin(out, tmp_path / "site with spaces", "uwsgi_plugin_hello", "hello")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "hello", 250, tmp_path / "log") == "Hello from a wheel"


def test_plugin_written_for_uwsgi_source_tree(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "intree-include", tmp_path / "intree")
    # uwsgi's own builder cannot find ../../uwsgi.h from here ...
    theirs = run([pip_uwsgi, "--build-plugin", project], cwd=tmp_path, env=clean_env(), check=False)
    assert theirs.returncode != 0 and "uwsgi.h" in theirs.stdout
    # ... the backend gives it the extracted header where it looks.
    build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    shared_object = installed_plugin(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_intree", "intree")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "intree", 252, tmp_path / "log") == "in-tree plugin"


def test_build_record(tmp_path, pip_uwsgi):
    build_wheel(copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    shared_object = installed_plugin(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_hello", "hello")
    record = json.loads((shared_object.parent / "build.json").read_text())
    version = run([pip_uwsgi, "--version"]).stdout.strip()
    cflags = run([pip_uwsgi, "--cflags"]).stdout.strip()
    assert record["uwsgi_version"] == version
    assert record["uwsgi_cflags"] == cflags
    assert record["plugins"] == ["hello"]


@pytest.mark.parametrize("old, new, problem", [
    (None, None, None),  # the real file through the same wrapper builds: what fails below is the edit
    ("p_cflags", "plugin_cflags", "has no local variable p_cflags, which the backend reads to compile the plugin"),
    ("uniq_warnings", "unique_warnings", "has no global uniq_warnings, which the backend reads to compile the plugin"),
    ("gccline", "command_line", "ran no gcc line the driver knows"),
])
def test_uwsgiconfig_without_a_name_the_driver_reads(tmp_path, outdir, debian_uwsgi, old, new, problem):
    """Debian's real uwsgiconfig.py, edited as another uWSGI release might have it: a name the
    driver reads from build_plugin() is gone. One error line says so, where, and what to do."""
    config_py = subprocess.run([debian_uwsgi, "--config-py"], capture_output=True, check=True).stdout.decode()
    edited = re.sub(rf"\b{old}\b", new, config_py) if old else config_py
    assert (edited != config_py) == bool(old)
    (tmp_path / "config-py").write_text(edited)
    uwsgi = tmp_path / "uwsgi"  # answers --config-py with the edited file, all else as Debian's uwsgi
    uwsgi.write_text(f'#!/bin/sh\nif [ "$1" = --config-py ]; then exec cat "{tmp_path}/config-py"; fi\n'
                     f'exec "{debian_uwsgi}" "$@"\n')
    uwsgi.chmod(0o755)
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    result = build_wheel(project, outdir, f"-Cuwsgi={uwsgi}", check=old is None)
    if old is None:
        assert len(list(outdir.glob("*.whl"))) == 1
        return
    assert_one_clean_failure(result, project, before, outdir,
                             r"error: unsupported uwsgiconfig\.py \(uWSGI 2\.0\.21-debian\): build_plugin\(\) in "
                             rf"\S+/kits/\w+/uwsgiconfig\.py {re.escape(problem)}.*; report it")
