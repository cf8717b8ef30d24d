"""Inputs that used to end in a traceback or in a wrong result, each now one
`uwsgi-plugin-backend: error:` line that says what to do, and
caches that never land in the project."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import (
    BUILD,
    NO_PASSWD_UID,
    SAMPLE,
    as_other_user,
    assert_one_clean_failure,
    build_wheel,
    clean_env,
    copy_project,
    run,
    tree_digest,
)

DEBIAN_UWSGI = "-Cuwsgi=/usr/bin/uwsgi-core"


def project_copy(tmp: Path) -> tuple[Path, dict]:
    project = copy_project(SAMPLE, tmp / "project")
    return project, tree_digest(project)


def test_dynamic_version_without_provider_fails_before_compiling(tmp_path, outdir, wheelhouse):
    project, _ = project_copy(tmp_path)
    text = (project / "pyproject.toml").read_text().replace('version = "1.0.0"', 'dynamic = ["version"]')
    (project / "pyproject.toml").write_text(text)
    before = tree_digest(project)
    result = build_wheel(project, outdir, DEBIAN_UWSGI, check=False)
    assert_one_clean_failure(result, project, before, outdir,
                             r'lists "version" in \[project\] dynamic, but nothing provides it.*metadata.version')
    assert "compiling" not in result.stdout
    # pip asks for the metadata first, in an isolated build.
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--find-links", wheelhouse, "--config-settings", "uwsgi=/usr/bin/uwsgi-core",
                  "-w", outdir, project], env=clean_env(), check=False)
    assert_one_clean_failure(result, project, before, outdir, r'lists "version" in \[project\] dynamic, but nothing provides it')


def test_build_dir_that_cannot_be_written(tmp_path, world_dir):
    project = copy_project(SAMPLE, world_dir / "project")
    before = tree_digest(project)
    locked_dir = world_dir / "not-yours"
    locked_dir.mkdir(mode=0o755)  # root's: the other uid cannot write it
    out = world_dir / "out"
    out.mkdir(mode=0o777)
    env = clean_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(world_dir / "cache"))
    result = as_other_user([*BUILD, "--wheel", "--outdir", out,
                            DEBIAN_UWSGI, f"-Cbuild-dir={locked_dir}", project], env=env, cwd=world_dir)
    assert result.returncode != 0
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in result.stdout, result.stdout
    assert f"cannot use -C build-dir={locked_dir}: Permission denied; name a writable directory" in result.stdout
    assert tree_digest(project) == before and not any(out.iterdir())


def test_merge_output_is_an_existing_file(tmp_path):
    target = tmp_path / "merged.whl"
    target.write_text("mine")
    first, second = tmp_path / "a.whl", tmp_path / "b.whl"
    result = run([sys.executable, "-m", "uwsgi_plugin_backend", "merge", first, second, "-o", target],
                 check=False, env=clean_env())
    assert result.returncode == 1 and "Traceback" not in result.stdout
    assert result.stdout.strip() == (f"uwsgi-plugin-backend: error: -o {target} is an existing file; -o names the "
                                     "directory to write the merged wheel into (created if missing): pass a directory, e.g. -o dist")
    assert target.read_text() == "mine"


def test_non_ascii_build_dir_under_the_c_locale(tmp_path):
    project, before = project_copy(tmp_path)
    env = clean_env(LC_ALL="C", PYTHONUTF8="0")
    result = build_wheel(project, tmp_path / "out", DEBIAN_UWSGI, f"-Cbuild-dir={tmp_path / 'bü'}", env=env, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stdout, result.stdout
    [wheel] = (tmp_path / "out").glob("*.whl")
    assert tree_digest(project) == before


# Item 9: the cache is never a relative path, so never inside the project a build runs in.

def cache_env(**values: str) -> dict[str, str]:
    env = clean_env(**values)
    for name in ("UWSGI_PLUGIN_BACKEND_CACHE_DIR", "XDG_CACHE_HOME"):
        if name not in values:
            env.pop(name, None)
    return env


def test_relative_xdg_cache_home_is_ignored(tmp_path, isolated_home):
    project, before = project_copy(tmp_path)
    result = build_wheel(project, tmp_path / "out", DEBIAN_UWSGI, env=cache_env(XDG_CACHE_HOME="relative-cache"))
    assert "Traceback" not in result.stdout
    assert tree_digest(project) == before
    assert (isolated_home / ".cache" / "uwsgi-plugin-backend" / "kits").is_dir()


def test_empty_cc_is_refused(tmp_path, outdir):
    project, before = project_copy(tmp_path)
    result = build_wheel(project, outdir, DEBIAN_UWSGI, env=clean_env(CC=" "), check=False)
    assert_one_clean_failure(result, project, before, outdir, r"\$CC=' ' names no compiler; unset it or name one")


def test_relative_cache_dir_setting_is_refused(tmp_path, outdir):
    project, before = project_copy(tmp_path)
    result = build_wheel(project, outdir, DEBIAN_UWSGI, env=cache_env(UWSGI_PLUGIN_BACKEND_CACHE_DIR="relative-cache"),
                         check=False)
    assert_one_clean_failure(result, project, before, outdir,
                             r"\$UWSGI_PLUGIN_BACKEND_CACHE_DIR='relative-cache' is a relative path; set an absolute one")


def test_no_home_and_no_passwd_entry(world_dir, seeded_cache):
    """Without a home, the cache is a directory of the user's own in the temporary
    directory, made private. A cache that another user could change is refused:
    its kits hold the uwsgiconfig.py each build runs, its builds what uwsgi loads."""
    world_dir.chmod(0o1777)  # a temporary directory, sticky as /tmp is
    project = copy_project(SAMPLE, world_dir / "project")
    for path in [project, *project.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    before = tree_digest(project)
    env = {k: v for k, v in cache_env(TMPDIR=str(world_dir)).items() if k != "HOME"}
    out = world_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    cache = world_dir / f"uwsgi-plugin-backend-{NO_PASSWD_UID}"
    build = [*BUILD, "--wheel", "--outdir", out, DEBIAN_UWSGI, "."]

    # The runtime makes it, private; the layouts the suite learned go in, as in every test.
    asked = as_other_user(["-c", "from uwsgi_plugin_backend.runtime._uwsgi_plugin import cache_dir; print(cache_dir())"],
                          env=env)
    assert asked.stdout.strip() == str(cache), asked.stdout
    assert cache.stat().st_uid == int(NO_PASSWD_UID) and cache.stat().st_mode & 0o777 == 0o700
    seeded_cache(cache)
    run(["chown", "-R", f"{NO_PASSWD_UID}:{NO_PASSWD_UID}", cache])
    result = as_other_user(build, env=env, cwd=project)
    assert result.returncode == 0, result.stdout
    assert tree_digest(project) == before
    assert (cache / "kits").is_dir()
    [wheel] = out.glob("*.whl")
    site = world_dir / "site"
    zipfile.ZipFile(wheel).extractall(site)

    def refused(env: dict[str, str], problem: str) -> None:
        result = as_other_user(build, env=env, cwd=project)
        assert result.returncode != 0
        assert result.stdout.count("uwsgi-plugin-backend: error:") == 1, result.stdout
        assert "Traceback" not in result.stdout, result.stdout
        assert (f"could be changed by another user, who could make this uid run their code: {problem}; set "
                "UWSGI_PLUGIN_BACKEND_CACHE_DIR to a directory of your own") in result.stdout, result.stdout
        assert tree_digest(project) == before and list(out.iterdir()) == [wheel]
        # The installed plugin still answers, from its own builds only.
        found = as_other_user(["-m", "uwsgi_plugin_hello", "--uwsgi", "/usr/bin/uwsgi-core"], env, (site,))
        assert found.returncode == 0, found.stdout
        assert found.stdout.strip().startswith(f"{site}/uwsgi_plugin_hello/uwsgi_builds/"), found.stdout

    # Another user's, as if made before this user's first build.
    run(["chown", "-R", "23456:23456", cache])
    refused(env, f"{cache} belongs to uid 23456")
    # A home (or XDG_CACHE_HOME) in a directory anyone can write to, as HOME=/tmp would be without the sticky bit.
    world_dir.chmod(0o777)
    refused({**env, "HOME": str(world_dir / "home")}, f"{world_dir} is writable by other users (mode 0777)")


def test_group_writable_cache_of_a_user_private_group(tmp_path, outdir, seeded_cache):
    """umask 002 with user private groups (Fedora, RHEL): a home cache writable by the
    user's own group, which no one else is in, is still the user's alone (root's here)."""
    home = tmp_path / "home"
    cache = seeded_cache(home / ".cache" / "uwsgi-plugin-backend")
    for directory in (home, home / ".cache", cache):
        directory.chmod(0o775)
    project, before = project_copy(tmp_path)
    result = build_wheel(project, outdir, DEBIAN_UWSGI, env=cache_env(HOME=str(home)))
    assert f"build kit extracted into {cache}/kits/" in result.stdout, result.stdout
    assert tree_digest(project) == before


# Item 11: entry points are checked at build time, before anything compiles.

@pytest.mark.parametrize("line, pattern", [
    ('hello = "uwsgi_plugin_typo:plugin_dir"',
     r'entry point hello = "uwsgi_plugin_typo:plugin_dir" points at module \'uwsgi_plugin_typo\', which the wheel '
     r'does not have: its package is uwsgi_plugin_hello; write hello = "uwsgi_plugin_hello:plugin_dir"'),
    ('hello = "uwsgi_plugin_hello:plugin_dir"\nhelo = "uwsgi_plugin_hello:plugin_dir"',
     r"the 'uwsgi.plugins' entry point 'helo' matches no plugin: the plugins built here are named hello"),
])
def test_entry_point_must_fit_the_wheel(line, pattern, tmp_path, outdir):
    project, _ = project_copy(tmp_path)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('hello = "uwsgi_plugin_hello:plugin_dir"', line))
    before = tree_digest(project)
    result = build_wheel(project, outdir, DEBIAN_UWSGI, check=False)
    assert_one_clean_failure(result, project, before, outdir, pattern)
    assert "compiling" not in result.stdout


# The sdist holds the source, not what builds and tools left in the tree (wheelhouse/: the
# publishing workflow's output directory, which a user running its steps by hand keeps).

JUNK = [".venv/bin/python", "venv-other/pyvenv.cfg", "build/temp/hello.o", "dist/old.whl", "kept-build/.lock",
        "kept-build/abi_2_0_21_x/plugin-0/hello.o", ".uwsgi_plugins_builder/hello.o", "hello_plugin.so",
        "wheelhouse/uwsgi_plugin_hello-1.0.0-py3-none-manylinux_2_5_x86_64.whl", "stray-1.0-py3-none-any.whl"]
SOURCE = ["LICENSE", "PKG-INFO", "README.md", "hello.c", "pyproject.toml", "uwsgiplugin.py"]


@pytest.mark.parametrize("git", [False, True], ids=["plain", "git"])
def test_sdist_leaves_out_what_is_not_source(git, tmp_path):
    project, _ = project_copy(tmp_path)
    for name in JUNK:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("junk")
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (project / "notes.txt").write_text("the project's own exclude still applies")
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.scikit-build]\nsdist.exclude = ["notes.txt"]\n')
    if git:
        run(["git", "init", "-q", project])
        run(["git", "-C", project, "add", "hello.c", "uwsgiplugin.py", "pyproject.toml"])
    result = run([sys.executable, *BUILD, "--sdist", "--outdir", tmp_path / "dist", project],
                 env=clean_env())
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = sorted(m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile())
    assert names == SOURCE
    assert f"uwsgi-plugin-backend: sdist holds 6 files: {', '.join(SOURCE)}" in result.stdout
