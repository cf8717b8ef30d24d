"""Incremental builds in a persistent build directory, and the kit cache."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    build_wheel,
    clean_env,
    copy_project,
    installed_plugin,
    plugin_answer,
    run,
    sha256,
    the_wheel,
)


def compiled(result) -> tuple[int, int]:
    """(compiled, total) from the build log's "compiling N of M sources" line."""
    [match] = re.findall(r"compiling (\d+) of (\d+) sources", result.stdout)
    return int(match[0]), int(match[1])




@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(PACKAGES / "multi", tmp_path / "multi")


def test_rebuilds_compile_only_what_changed(tmp_path, project, pip_uwsgi, debian_uwsgi):
    build_dir = tmp_path / "build"

    def build(name: str, uwsgi: Path = pip_uwsgi):
        return build_wheel(project, tmp_path / name, f"-Cuwsgi={uwsgi}", f"-Cbuild-dir={build_dir}")

    assert compiled(build("clean")) == (4, 4)

    (project / "gamma.c").write_text('const char *gamma_word(void) { return "GAMMA"; }\n')
    assert compiled(build("one-source")) == (1, 4)
    (project / "common.h").write_text('#define COMMON_WORD "shared"\n')
    assert compiled(build("header")) == (2, 4)  # alpha.c and beta.c include it
    shared_object = installed_plugin(tmp_path / "header", tmp_path / "s3", "uwsgi_plugin_multi", "multi")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "multi", 247, tmp_path / "log") == "alpha-shared beta-shared GAMMA"

    # Another uwsgi (other flags and uwsgi.h) reuses nothing of the first one's.
    assert compiled(build("debian", debian_uwsgi)) == (4, 4)
    # Back to pip's uwsgi (the last wheel is Debian's): every object of its build is reused.
    assert compiled(build("pip-again")) == (0, 4)
    again = installed_plugin(tmp_path / "pip-again", tmp_path / "s4", "uwsgi_plugin_multi", "multi")
    assert again.read_bytes() == shared_object.read_bytes()


REUSED = re.compile(r"(\S+\.whl) reused: nothing has changed since the last build in ")


def test_no_change_rebuild_hands_back_the_last_wheel(tmp_path, project, uwsgi_venv, wheelhouse, debian_uwsgi):
    """pip with build isolation (a new build environment each time) and a kept
    build directory: the second build hands back the first one's wheel, running
    no compiler; any input changed builds again."""
    kept = [f"-Cbuild-dir={tmp_path / 'build'}", f"-Cuwsgi={uwsgi_venv.uwsgi}"]
    pip_wheel = [uwsgi_venv.python, "-m", "pip", "wheel", "-v", "--no-deps", "--find-links", wheelhouse, *kept]
    run([*pip_wheel, "-w", tmp_path / "first", project], env=clean_env())
    again = run([*pip_wheel, "-w", tmp_path / "again", project], env=clean_env())
    assert REUSED.search(again.stdout) and "compiling" not in again.stdout, again.stdout
    assert sha256(the_wheel(tmp_path / "again")) == sha256(the_wheel(tmp_path / "first"))

    def rebuilds(out: str | Path, *settings: str, **env: str) -> bool:
        result = build_wheel(project, tmp_path / out, *kept, *settings, env=clean_env(**env))
        return REUSED.search(result.stdout) is None and "compiling" in result.stdout

    assert not rebuilds("no-change")
    # The output directory is no input: python -m build writes into the project's dist/.
    assert not rebuilds(project / "dist")
    assert not rebuilds(project / "dist")
    (project / "alpha.c").touch()  # newer, the same text: compared by content, as the kept objects are
    assert not rebuilds("touched")
    assert rebuilds("setting", "-Cstrip=true")
    assert rebuilds("variable", "-Cstrip=true", CFLAGS="-DUNUSED_MACRO")
    assert rebuilds("uwsgi", "-Cstrip=true", f"-Cuwsgi={debian_uwsgi}", CFLAGS="-DUNUSED_MACRO")
    assert not rebuilds("unchanged", "-Cstrip=true", f"-Cuwsgi={debian_uwsgi}", CFLAGS="-DUNUSED_MACRO")


def test_no_change_rebuild_sees_what_the_build_reads(tmp_path, project, pip_uwsgi):
    """Changes that leave sizes and dates alone, headers outside the project,
    wheels and build directories inside it (found by trying to get a stale wheel)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "outside.h").write_text("#define OUTSIDE 1\n")
    alpha = project / "alpha.c"
    alpha.write_text('#include "outside.h"\n' + alpha.read_text())
    kept = [f"-Cbuild-dir={tmp_path / 'build'}", f"-Cuwsgi={pip_uwsgi}"]
    env = clean_env(CFLAGS=f"-I{outside}")

    def rebuilds(out: str | Path, *settings: str) -> bool:
        result = build_wheel(project, tmp_path / out, *kept, *settings, env=env)
        return REUSED.search(result.stdout) is None and "compiling" in result.stdout

    assert rebuilds("first")
    assert not rebuilds("no-change")
    # Another text of the same size and date (an sdist made with SOURCE_DATE_EPOCH dates all files alike).
    status = alpha.stat()
    alpha.write_text(alpha.read_text().replace("alpha-", "ALPHA-"))
    os.utime(alpha, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert rebuilds("same-size-and-date")
    (outside / "outside.h").write_text("#define OUTSIDE 2\n")  # reached by the absolute -I in CFLAGS
    assert rebuilds("outside-header")
    # Wheels written into the project (pip wheel . does) and another kept build directory there are no inputs.
    assert not rebuilds(project)
    build_wheel(project, tmp_path / "other", f"-Cbuild-dir={project / 'other-build'}", f"-Cuwsgi={pip_uwsgi}", env=env)
    assert not rebuilds("after-other-build-dir")
    # A readme outside the project: its changes cannot be seen, so nothing is reused, and the log says why.
    (tmp_path / "README.md").write_text("outside")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0.0"', 'version = "1.0.0"\nreadme = "../README.md"'))
    result = build_wheel(project, tmp_path / "readme", *kept, env=env)
    assert "is not reused, whatever changed: pyproject.toml names a file outside the project" in result.stdout
    assert rebuilds("readme-again")


def test_one_compiler_job(tmp_path, project, pip_uwsgi):
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", "-Cjobs=1")
    assert "4 sources (0 unchanged, reused), 1 at a time" in result.stdout


def test_bad_jobs_value(tmp_path, project, pip_uwsgi):
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", "-Cjobs=0", check=False)
    assert result.returncode != 0
    assert "-C jobs='0' is not a whole number of at least 1" in result.stdout


def test_kit_cache_is_used_and_checked(tmp_path, project, pip_uwsgi, seeded_cache):
    env = clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(seeded_cache(tmp_path / "cache")))
    first = build_wheel(project, tmp_path / "a", f"-Cuwsgi={pip_uwsgi}", env=env)
    assert "build kit extracted into" in first.stdout
    second = build_wheel(project, tmp_path / "b", f"-Cuwsgi={pip_uwsgi}", env=env)
    assert "build kit cached in" in second.stdout
    # A tampered entry is not trusted: it is extracted again.
    [entry] = [p for p in (tmp_path / "cache" / "kits").iterdir() if p.is_dir()]
    header = entry / "uwsgi.h"
    header.write_bytes(header.read_bytes()[:1000])
    third = build_wheel(project, tmp_path / "c", f"-Cuwsgi={pip_uwsgi}", env=env)
    assert "does not match its checksums; extracting it again" in third.stdout
    assert json.loads((entry / "kit.json").read_text())["version"] == "2.0.31"
    assert len(header.read_bytes()) > 100_000
