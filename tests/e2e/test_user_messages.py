"""Messages that misled a new user: each is met as a user meets it,
through a frontend, and must say what happened and the fix that fits, no more."""

from __future__ import annotations

import os
import re
import sys

from conftest import (
    BUILD,
    SAMPLE,
    UV,
    assert_one_clean_failure,
    build_wheel,
    clean_env,
    copy_project,
    kept_uwsgi_wheel,
    make_venv,
    plugin_answer,
    run,
    tree_digest,
)


def test_missing_header_of_the_project(tmp_path, outdir, pip_uwsgi):
    """`#include "missing.h"`: a header of the project, not a package to install; the
    compiler command, 2 KB for pip's uWSGI (every embedded plugin's UDEP(...)), shortened."""
    project = copy_project(SAMPLE, tmp_path / "project")
    source = project / "hello.c"
    source.write_text(source.read_text().replace("#include <uwsgi.h>", '#include <uwsgi.h>\n#include "missing.h"'))
    before = tree_digest(project)
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_uwsgi}", check=False)
    assert_one_clean_failure(
        result, project, before, outdir,
        r'missing\.h is included with quotes, as a header of the project, but the project .*/project has no such file'
        r'.*: add it, or fix the #include\.'
        r'.*\n\nthe command was \(shortened; -C build\.verbose=true shows it whole\): gcc .*\$\(uwsgi --cflags\)')
    message = result.stdout.split("uwsgi-plugin-backend: error: ", 1)[1].split("\n\n\n")[0]
    assert "install the development package" not in message and "UDEP(" not in message
    assert len(message) < 1000, message

    # A system header (<...>) keeps the package hint; -C build.verbose shows the whole command.
    source.write_text(source.read_text().replace('"missing.h"', "<missing.h>"))
    before = tree_digest(project)
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_uwsgi}", "-Cbuild.verbose=true", check=False)
    assert_one_clean_failure(result, project, before, outdir,
                             r"missing\.h is not installed: install the development package that provides it\."
                             r"\n\nthe command was: gcc .*UDEP\(")


def test_plugin_name_differs_from_the_entry_point(tmp_path, outdir, pip_uwsgi):
    """NAME = 'count', entry point `counter`: one message naming both, and both fixes."""
    project = copy_project(SAMPLE, tmp_path / "project")
    (project / "uwsgiplugin.py").write_text("NAME = 'count'\nGCC_LIST = ['hello']\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('hello = "uwsgi_plugin_hello:plugin_dir"',
                                                       'counter = "uwsgi_plugin_hello:plugin_dir"'))
    before = tree_digest(project)
    result = build_wheel(project, outdir, f"-Cuwsgi={pip_uwsgi}", check=False, checked=True)
    assert_one_clean_failure(
        result, project, before, outdir,
        r"the 'uwsgi.plugins' entry point counter in pyproject.toml names no plugin: the plugin built here is called "
        r"count \(NAME in uwsgiplugin.py\).*\n\n\[project.entry-points.\"uwsgi.plugins\"\]\ncount = "
        r"\"uwsgi_plugin_hello:plugin_dir\"\n\nor set NAME in uwsgiplugin.py to the entry point's name")
    assert "declares no" not in result.stdout


def test_debian_build_is_one_line_per_step(tmp_path, debian_uwsgi):
    """Debian's uwsgiconfig.py prints every command it runs (verbose_build = True): the gcc
    line (3 KB) and, for REQUIRES, the objcopy line. At default verbosity they are not shown."""
    project = copy_project(SAMPLE, tmp_path / "project")
    (project / "uwsgiplugin.py").write_text("NAME = 'hello'\nGCC_LIST = ['hello']\nREQUIRES = ['python']\n")
    quiet = build_wheel(project, tmp_path / "a", f"-Cuwsgi={debian_uwsgi}").stdout
    ours = [line for line in quiet.splitlines() if line.startswith("uwsgi-plugin-backend:")]
    assert ours and all(len(line) < 300 for line in ours), quiet
    assert " -fPIC " not in quiet and "objcopy" not in quiet, quiet
    verbose = build_wheel(project, tmp_path / "b", f"-Cuwsgi={debian_uwsgi}", "-Cbuild.verbose=true").stdout
    assert "gcc -fPIC -shared -o hello_plugin.so " in verbose and "objcopy hello_plugin.so --add-section" in verbose


def test_no_build_fits_a_plugin_installed_from_a_wheel_file(tmp_path, wheelhouse, debian_uwsgi):
    """Installed from a local .whl (before a release, or a private wheel): no index route,
    which cannot work. With the sdist beside the wheel (python -m build writes both), the
    route is that sdist; it says it replaces the builds installed now, and keeps this
    environment's own uwsgi served: followed as printed, both uwsgis have a build."""
    venv = make_venv(tmp_path / "venv")
    venv.install(kept_uwsgi_wheel())
    dist = tmp_path / "dist"
    env = clean_env(UWSGI_PLUGIN_BACKEND_UWSGI=str(venv.uwsgi))
    run([sys.executable, *BUILD, "--outdir", dist, copy_project(SAMPLE, tmp_path / "project")], env=env)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    venv.pip("install", "-q", wheel)
    ask = [venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", debian_uwsgi]

    refused = run(ask, env=clean_env(), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stdout
    assert "--no-binary" not in refused.stdout
    assert (f"or reinstall from source; this replaces the builds installed now with builds for {debian_uwsgi} and "
            f"{venv.uwsgi} (the default uwsgi here, which a build of this wheel fits) only:") in refused.stdout
    [route] = [line.strip() for line in refused.stdout.splitlines() if line.strip().startswith("pip install")]
    assert route == (f"pip install --force-reinstall --no-cache-dir -C uwsgi={debian_uwsgi} -C uwsgi={venv.uwsgi} "
                     f"{sdist}")
    run(["sh", "-c", route], env=clean_env(PIP_FIND_LINKS=str(wheelhouse), PATH=f"{venv.root / 'bin'}:{os.environ['PATH']}"))
    for uwsgi in (debian_uwsgi, venv.uwsgi):
        directory = run([venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env()).stdout.strip()
        assert plugin_answer(uwsgi, directory, "hello", 250, tmp_path / f"{uwsgi.name}.log") == "Hello from a wheel"

    # The wheel alone: it has no sources pip could build from; build a wheel from the project.
    sdist.unlink()
    venv.pip("install", "-q", "--force-reinstall", "--no-deps", wheel)
    refused = run(ask, env=clean_env(), check=False)
    assert refused.returncode == 1 and "--no-binary" not in refused.stdout and "pip install --force" not in refused.stdout
    assert (f"or build a wheel for it from the project's source and install that (uwsgi-plugin-hello was installed "
            f"from {wheel.as_uri()}, a wheel, which has no sources pip could build from):\n"
            f"  pip wheel --no-deps -w DIR -C uwsgi={debian_uwsgi} -C uwsgi={venv.uwsgi} PROJECT") in refused.stdout
    # Followed as printed (PROJECT: the sample), then installed: both uwsgis keep a build.
    project = copy_project(SAMPLE, tmp_path / "followed")
    run(["sh", "-c", f"pip wheel --no-deps -w {tmp_path / 'built'} -C uwsgi={debian_uwsgi} -C uwsgi={venv.uwsgi} {project}"],
        env=clean_env(PIP_FIND_LINKS=str(wheelhouse), PATH=f"{venv.root / 'bin'}:{os.environ['PATH']}"))
    venv.pip("install", "-q", "--force-reinstall", "--no-deps", *(tmp_path / "built").glob("*.whl"))
    for uwsgi in (debian_uwsgi, venv.uwsgi):
        assert run([venv.python, "-m", "uwsgi_plugin_hello", "--uwsgi", uwsgi], env=clean_env()).returncode == 0


def test_uwsgi_found_on_path_stands_out(tmp_path, wheelhouse, debian_uwsgi):
    """uv build from outside any environment with a uwsgi, Debian's on PATH: the build is for
    /usr/bin/uwsgi, as a last resort. uv shows the backend's log at its default verbosity;
    the choice is a warning there, at the choice and again after the wheel is written."""
    project = copy_project(SAMPLE, tmp_path / "project")
    env = clean_env(PATH=f"{tmp_path / 'nothing'}:/usr/local/bin:/usr/bin:/bin")
    result = run([UV, "build", "--wheel", "--python", sys.executable, "--find-links", wheelhouse,
                  "--out-dir", tmp_path / "out", project], env=env)
    lines = result.stdout.splitlines()
    [choice] = [i for i, line in enumerate(lines) if line.startswith("uwsgi-plugin-backend: building for ")]
    assert "(found on PATH" in lines[choice]
    assert lines[choice + 1].startswith(f"uwsgi-plugin-backend: warning: {debian_uwsgi} is the first uwsgi on PATH, "
                                        "the last place looked"), result.stdout
    [last] = [line for line in lines if " is built for " in line]
    assert last.startswith("uwsgi-plugin-backend: warning: uwsgi_plugin_hello-1.0.0-") and "-C uwsgi=PATH" in last
    # Named, it is the user's choice: no warning.
    named = run([UV, "build", "--wheel", "--python", sys.executable, "--find-links", wheelhouse, "-C",
                 f"uwsgi={debian_uwsgi}", "--out-dir", tmp_path / "named", project], env=env)
    assert "warning:" not in named.stdout


def test_pyuwsgi_installed_for_another_machine_or_elsewhere(tmp_path, pyuwsgi_venv, outdir):
    """pip install --target DIR --platform manylinux_2_28_aarch64 pyuwsgi, then -C uwsgi=DIR/bin/uwsgi:
    the script's interpreter imports its own (x86_64) pyuwsgi, and the build was silently for that one.
    It stops, naming both; so does a pyuwsgi for this machine in --target DIR, which that Python
    does not import either."""
    project = copy_project(SAMPLE, tmp_path / "project")
    before = tree_digest(project)
    arm = tmp_path / "arm target"
    pyuwsgi_venv.pip("install", "-q", "--target", arm, "--platform", "manylinux_2_28_aarch64", "--only-binary=:all:",
                     "pyuwsgi")
    [module] = arm.glob("pyuwsgi*aarch64*.so")
    result = build_wheel(project, outdir, f"-Cuwsgi={arm / 'bin' / 'uwsgi'}", check=False)
    assert_one_clean_failure(
        result, project, before, outdir,
        rf"{re.escape(str(arm / 'bin' / 'uwsgi'))} belongs to the pyuwsgi at {re.escape(str(module))}, which is for "
        r"aarch64, but its interpreter .* runs on x86_64 and imports .*/py uwsgi/lib/.*pyuwsgi\..*x86_64.*\.so")

    here = tmp_path / "target"
    pyuwsgi_venv.pip("install", "-q", "--target", here, "pyuwsgi")
    result = build_wheel(project, outdir, f"-Cuwsgi={here / 'bin' / 'uwsgi'}", check=False)
    assert_one_clean_failure(
        result, project, before, outdir,
        rf"{re.escape(str(here / 'bin' / 'uwsgi'))}'s interpreter .* imports pyuwsgi from .*/py uwsgi/lib/.*, not the "
        rf"pyuwsgi installed with the script \({re.escape(str(here))}/pyuwsgi.*\.so; pip install --target")
    # The environment's own script still builds.
    build_wheel(project, tmp_path / "own", f"-Cuwsgi={pyuwsgi_venv.uwsgi}")
