"""Projects that `uwsgi --build-plugin` builds must build here too:
uwsgiplugin.py importing uwsgiconfig, sources and headers beside the plugin
directory, UWSGI_* variables, symlink loops, and a uwsgi whose --cflags hold
a two-word flag. Built by pip with build isolation, served by a real uwsgi."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import PACKAGES, SAMPLE, Venv, build_wheel, clean_env, copy_project, plugin_answer, run, tree_digest

pytestmark = pytest.mark.slow


def pip_wheel(venv: Venv, wheelhouse: Path, project: Path, out: Path, *settings: str, check: bool = True,
              **env: str) -> subprocess.CompletedProcess:
    """The user's pip, build isolation on, the backend from the wheelhouse; -v shows the backend's log."""
    return run([venv.python, "-m", "pip", "wheel", "-v", "--no-deps", "-w", out, *settings, project],
               env=clean_env(PIP_FIND_LINKS=str(wheelhouse), **env), check=check)


def builds_dir(out: Path, site: Path, package: str) -> Path:
    """Unpack the one wheel in ``out``; return the directory of its one uWSGI build."""
    [wheel] = out.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(site)
    [build] = site.glob(f"{package}/uwsgi_builds/*/")
    return build


def test_uwsgiplugin_that_imports_uwsgiconfig(tmp_path, uwsgi_venv, wheelhouse):
    """uWSGI's plugins/airbrake does `from uwsgiconfig import spcall`; here NAME comes from it too."""
    project = copy_project(PACKAGES / "imports-uwsgiconfig", tmp_path / "p")
    pip_wheel(uwsgi_venv, wheelhouse, project, tmp_path / "out")
    build = builds_dir(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_importer")
    assert plugin_answer(uwsgi_venv.uwsgi, build, "importer", 242, tmp_path / "log") == "from-uwsgiconfig"


def test_sources_and_headers_beside_the_plugin_directory(tmp_path, uwsgi_venv, wheelhouse):
    """common/ shared by two plugins: -I../common, ../common/shared.c in GCC_LIST,
    #include "../../common/shared.h" next to #include "../../uwsgi.h"."""
    project = copy_project(PACKAGES / "shared-common", tmp_path / "p")
    # plugins/second's ../../uwsgi.h is inside the project: the target uwsgi's own header must win there.
    (project / "uwsgi.h").write_text('#error "a stale copy of uwsgi.h"\n')
    before = tree_digest(project)
    result = pip_wheel(uwsgi_venv, wheelhouse, project, tmp_path / "out")
    assert tree_digest(project) == before
    assert f"the project's {project / 'uwsgi.h'} gives way, in the build, to the uwsgi.h of the uwsgi" in result.stdout
    build = builds_dir(tmp_path / "out", tmp_path / "site", "uwsgi_shared_common")
    assert plugin_answer(uwsgi_venv.uwsgi, build, "first", 240, tmp_path / "first.log") == "first+shared source"
    assert plugin_answer(uwsgi_venv.uwsgi, build, "second", 241, tmp_path / "second.log") == "second+shared"


def test_header_outside_the_project_is_not_a_missing_package(tmp_path, uwsgi_venv, wheelhouse):
    project = copy_project(SAMPLE, tmp_path / "repo" / "sample")
    (tmp_path / "repo" / "outside.h").write_text('#define OUTSIDE "outside"\n')
    source = project / "hello.c"
    source.write_text('#include "../outside.h"\n' + source.read_text())
    out = tmp_path / "out"
    result = pip_wheel(uwsgi_venv, wheelhouse, project, out, check=False)
    assert result.returncode != 0
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1, result.stdout
    assert "../outside.h: No such file or directory" in result.stdout
    assert "development package" not in result.stdout and "apt-get" not in result.stdout
    assert f"a copy of the project {project}" in result.stdout
    assert not out.exists() or not list(out.iterdir())
    # A header of the project that is not on the include path: where it is, not a package to install.
    common = copy_project(PACKAGES / "shared-common", tmp_path / "common")
    (common / "first" / "uwsgiplugin.py").write_text("NAME = 'first'\nGCC_LIST = ['first', '../common/shared.c']\n")
    result = pip_wheel(uwsgi_venv, wheelhouse, common, out, check=False)
    assert result.returncode != 0
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1, result.stdout
    assert f"shared.h is a file of the project ({common / 'common' / 'shared.h'}), but not on the include path" in result.stdout
    assert "development package" not in result.stdout and "apt-get" not in result.stdout


def test_uwsgi_variables_reach_uwsgiplugin(tmp_path, uwsgi_venv, wheelhouse):
    """uWSGI's python and mongodb plugins read UWSGI_PYTHON_NOLIB, UWSGI_MONGODB_NOLIB;
    the uwsgi binaries the backend asks must not see them (uwsgi reads UWSGI_* as options)."""
    project = copy_project(SAMPLE, tmp_path / "p")
    source = project / "hello.c"
    source.write_text(source.read_text().replace('"Hello from a wheel"', "GREETING"))
    (project / "uwsgiplugin.py").write_text(
        "import os\n\nNAME = 'hello'\nGCC_LIST = ['hello']\n"
        "CFLAGS = ['-DGREETING=\\\\\"%s\\\\\"' % os.environ['UWSGI_HELLO_GREETING']]\n"
    )
    pip_wheel(uwsgi_venv, wheelhouse, project, tmp_path / "out",
              UWSGI_HELLO_GREETING="Hello-from-the-environment", UWSGI_INI="/no/such/file.ini")
    build = builds_dir(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_hello")
    assert plugin_answer(uwsgi_venv.uwsgi, build, "hello", 250, tmp_path / "log") == "Hello-from-the-environment"


def test_symlink_loops_in_the_plugin_directory(tmp_path, uwsgi_venv, wheelhouse):
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "self").symlink_to(".")
    (project / "include").mkdir()
    (project / "include" / "foo").symlink_to(".")
    (project / "include" / "up").symlink_to("..")
    (project / "a").symlink_to("b")  # a loop that resolves to nothing
    (project / "b").symlink_to("a")
    before = tree_digest(project)
    result = pip_wheel(uwsgi_venv, wheelhouse, project, tmp_path / "out")
    assert tree_digest(project) == before
    for link, target in (("self", "."), ("include/foo", "."), ("include/up", "..")):
        assert f"skipping the link {project / link} -> {target}: it points back into" in result.stdout, result.stdout
    build = builds_dir(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_hello")
    assert plugin_answer(uwsgi_venv.uwsgi, build, "hello", 250, tmp_path / "log") == "Hello from a wheel"


def wrapper(path: Path, uwsgi: Path, extra_cflags: str) -> Path:
    """A script around a real uwsgi that adds ``extra_cflags`` to what --cflags prints."""
    path.write_text(f"""#!/bin/sh
if [ "$1" = --cflags ]; then
    printf '%s %s\\n' "$('{uwsgi}' --cflags)" '{extra_cflags}'
    exit 0
fi
exec '{uwsgi}' "$@"
""")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_uwsgi_whose_cflags_hold_a_two_word_flag(tmp_path, uwsgi_venv, wheelhouse):
    """Conda's toolchains write `-isystem /path`; garbage in --cflags is still refused."""
    (tmp_path / "conda").mkdir()
    conda_like = wrapper(tmp_path / "conda" / "uwsgi", uwsgi_venv.uwsgi, "-isystem /usr/include")
    pip_wheel(uwsgi_venv, wheelhouse, copy_project(SAMPLE, tmp_path / "p"), tmp_path / "out", f"-Cuwsgi={conda_like}")
    build = builds_dir(tmp_path / "out", tmp_path / "site", "uwsgi_plugin_hello")
    assert json.loads((build / "build.json").read_text())["uwsgi_cflags"].endswith(" -isystem /usr/include")
    # The flag changes no struct layout: the real binary loads the plugin.
    assert plugin_answer(uwsgi_venv.uwsgi, build, "hello", 250, tmp_path / "log") == "Hello from a wheel"

    # The refusal is the backend's own, whatever the frontend: `python -m build` is quicker than pip's isolation.
    for garbage in ("-isystem $(touch PWNED)", "-isystem", "-O2 ; touch PWNED"):
        (tmp_path / "bad").mkdir()
        bad = wrapper(tmp_path / "bad" / "uwsgi", uwsgi_venv.uwsgi, garbage)
        out = tmp_path / "bad-out"
        result = build_wheel(copy_project(SAMPLE, tmp_path / "bad" / "p"), out, f"-Cuwsgi={bad}", check=False)
        assert result.returncode != 0
        assert f"{bad} is not a uwsgi binary: `uwsgi --cflags` printed" in result.stdout, result.stdout
        assert not out.exists() or not list(out.iterdir())
        assert not list(tmp_path.rglob("PWNED")) and not os.path.exists("PWNED")
        shutil.rmtree(tmp_path / "bad")
