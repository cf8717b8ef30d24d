"""Incremental builds in a persistent build directory, and the kit cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import PACKAGES, build_wheel, clean_env, copy_project, installed_plugin, plugin_answer, seeded_cache


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
    assert compiled(build("no-change")) == (0, 4)
    first, again = installed_plugin(tmp_path / "clean", tmp_path / "s1", "uwsgi_plugin_multi", "multi"), installed_plugin(tmp_path / "no-change", tmp_path / "s2", "uwsgi_plugin_multi", "multi")
    assert first.read_bytes() == again.read_bytes()

    (project / "gamma.c").write_text('const char *gamma_word(void) { return "GAMMA"; }\n')
    assert compiled(build("one-source")) == (1, 4)
    (project / "common.h").write_text('#define COMMON_WORD "shared"\n')
    assert compiled(build("header")) == (2, 4)  # alpha.c and beta.c include it
    shared_object = installed_plugin(tmp_path / "header", tmp_path / "s3", "uwsgi_plugin_multi", "multi")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "multi", 247, tmp_path / "log") == "alpha-shared beta-shared GAMMA"

    # Another uwsgi (other flags and uwsgi.h) reuses nothing of the first one's.
    assert compiled(build("debian", debian_uwsgi)) == (4, 4)
    assert compiled(build("pip-again")) == (0, 4)


def test_one_compiler_job(tmp_path, project, pip_uwsgi):
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", "-Cjobs=1")
    assert "4 sources (0 unchanged, reused), 1 at a time" in result.stdout


def test_bad_jobs_value(tmp_path, project, pip_uwsgi):
    result = build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}", "-Cjobs=0", check=False)
    assert result.returncode != 0
    assert "-C jobs='0' is not a whole number of at least 1" in result.stdout


def test_kit_cache_is_used_and_checked(tmp_path, project, pip_uwsgi):
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
