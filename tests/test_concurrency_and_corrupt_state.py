"""Hardening: concurrent and interrupted builds, corrupt state, hostile or odd inputs.
Every failure ends in one clear error; nothing in an output directory, a
cache or a source tree is ever left half written or trusted when it should not be."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import (
    PACKAGES,
    SAMPLE,
    build_command,
    build_wheel,
    clean_env,
    copy_project,
    installed_plugin,
    plugin_answer,
    sha256,
    tree_digest,
)

SDE = {"SOURCE_DATE_EPOCH": "1700000000"}




def assert_only_complete_wheels(outdir: Path) -> list[Path]:
    """Whatever is in the output directory is a whole wheel: no partial files, no broken zips."""
    if not outdir.exists():
        return []
    leftovers = [p.name for p in outdir.iterdir() if not p.name.endswith(".whl")]
    assert not leftovers, leftovers
    wheels = sorted(outdir.glob("*.whl"))
    for wheel in wheels:
        assert zipfile.ZipFile(wheel).testzip() is None
    return wheels


def test_eight_concurrent_builds_agree(tmp_path, pip_uwsgi, seeded_cache):
    project = copy_project(PACKAGES / "multi", tmp_path / "multi")
    env = clean_env(**SDE, UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(seeded_cache(tmp_path / "cache")))
    shared_build_dir = f"-Cbuild-dir={tmp_path / 'build'}"
    outdirs = [tmp_path / "same-out"] * 4 + [tmp_path / f"out-{i}" for i in range(4)]
    processes = [
        subprocess.Popen(build_command(project, out, f"-Cuwsgi={pip_uwsgi}", shared_build_dir),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for out in outdirs
    ]
    results = [(process.wait(timeout=600), process.stdout.read()) for process in processes]
    assert all(status == 0 for status, _ in results), [output for status, output in results if status]
    wheels = [wheel for out in sorted(set(outdirs)) for wheel in assert_only_complete_wheels(out)]
    assert len(wheels) == 5
    assert len({sha256(wheel) for wheel in wheels}) == 1


def compiler_running(session: int) -> bool:
    """Is a compiler proper (cc1, cc1plus) running in the process session ``session``?"""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            text = stat_file.read_text()
            comm, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
            if comm in ("cc1", "cc1plus") and int(fields[3]) == session:
                return True
    return False


def _wait_for_compiler(process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if compiler_running(process.pid):
            return True
        time.sleep(0.002)
    return False


# Where a build is stopped: right after the log line that opens a stage, or,
# for the compile, once a compiler is seen running for the build.
STAGES = {
    "reading the kit": lambda line, process: "building for " in line,
    "compiling": lambda line, process: "building plugin " in line and _wait_for_compiler(process),
    "writing the wheel": lambda line, process: "platform tag " in line,
}


def interrupt_at(stage: str, command: list[str], env: dict[str, str], sig: int) -> None:
    """Run a build and send ``sig`` to its process group as it reaches ``stage``;
    fail unless the signal landed while the build was in that stage."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)
    reached = STAGES[stage]
    landed = False
    for line in process.stdout:
        if reached(line, process):
            landed = process.poll() is None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            break
    process.stdout.close()
    process.wait(timeout=60)
    assert landed, f"the build ended before it could be stopped while {stage}"
    assert process.returncode != 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_builds_leave_nothing_half_done(tmp_path, pip_uwsgi, sig, seeded_cache):
    """Each stage of a build (kit, compile, wheel write) is interrupted twice;
    afterwards the output holds no partial wheel, and the kept build directory
    and cache give the same wheel as a clean build."""
    project = copy_project(PACKAGES / "multi", tmp_path / "multi")
    env = clean_env(**SDE, UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(seeded_cache(tmp_path / "cache")))
    build_dir = f"-Cbuild-dir={tmp_path / 'build'}"
    # The reference: built once, untouched, in a build directory of its own.
    reference = tmp_path / "reference"
    build_wheel(project, reference, f"-Cuwsgi={pip_uwsgi}", f"-Cbuild-dir={tmp_path / 'reference-build'}", env=env)
    [expected] = reference.glob("*.whl")
    source = project / "gamma.c"
    original = source.read_text()
    for attempt, stage in enumerate([*STAGES, *STAGES]):
        # A changed source each time, so that a compile really runs; long enough (~0.5 s)
        # to be seen running from /proc while another test worker loads the machine.
        padding = "".join(f"int gamma_pad_{attempt}_{i}(int x) {{ return x * {i} + (x >> 3); }}\n" for i in range(600))
        source.write_text(original + padding)
        out = tmp_path / f"out-{attempt}"
        interrupt_at(stage, build_command(project, out, f"-Cuwsgi={pip_uwsgi}", build_dir), env, sig)
        assert assert_only_complete_wheels(out) == []
    source.write_text(original)
    final = tmp_path / "final"
    build_wheel(project, final, f"-Cuwsgi={pip_uwsgi}", build_dir, env=env)
    [wheel] = assert_only_complete_wheels(final)
    assert sha256(wheel) == sha256(expected)


def test_hostile_path_and_source_names(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "pro ject $HOME; 'q\" ü" / "sample")
    odd = "hé llo$x;y'z`b"
    (project / "hello.c").rename(project / f"{odd}.c")
    (project / "uwsgiplugin.py").write_text(f"NAME = 'hello'\nGCC_LIST = [{odd!r}]\n")
    before = tree_digest(project)
    out = tmp_path / "out $x; 'q\""
    build_wheel(project, out, f"-Cuwsgi={pip_uwsgi}", f"-Cbuild-dir={tmp_path / 'build $x;'}")
    assert tree_digest(project) == before
    [wheel] = out.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    [shared_object] = (tmp_path / "site").glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.so")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "hello", 250, tmp_path / "log") == "Hello from a wheel"


def failing_build(project: Path, tmp_path: Path, *settings: str, env: dict | None = None) -> str:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    before = tree_digest(project)
    result = build_wheel(project, out, *settings, check=False, env=env)
    assert result.returncode != 0
    assert result.stdout.count("uwsgi-plugin-backend: error:") == 1 and "Traceback" not in result.stdout, result.stdout
    assert tree_digest(project) == before
    assert not list(out.iterdir())
    return result.stdout


def test_sources_outside_the_plugin_directory(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "p" / "sample")
    (project.parent / "shared.c").write_text("const char *shared_word(void) { return \"shared\"; }\n")
    (project / "uwsgiplugin.py").write_text("NAME = 'hello'\nGCC_LIST = ['hello', '../shared.c']\n")
    message = failing_build(project, tmp_path, f"-Cuwsgi={pip_uwsgi}")
    assert f"lists '../shared.c' in GCC_LIST, a file outside the project {project}" in message
    assert "allow-outside-sources = true" in message
    absolute = copy_project(SAMPLE, tmp_path / "abs")
    (absolute / "uwsgiplugin.py").write_text(f"NAME = 'hello'\nGCC_LIST = ['hello', {str(project.parent / 'shared.c')!r}]\n")
    assert "a file outside the project" in failing_build(absolute, tmp_path / "abs-out", f"-Cuwsgi={pip_uwsgi}")
    # Allowed: read where it is, written nowhere.
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n[tool.uwsgi-plugin]\nallow-outside-sources = true\n")
    parent_before = tree_digest(project.parent)
    build_wheel(project, tmp_path / "allowed", f"-Cuwsgi={pip_uwsgi}", f"-Cbuild-dir={tmp_path / 'b'}")
    assert tree_digest(project.parent) == parent_before
    assert list((tmp_path / "allowed").glob("*.whl"))
    with (absolute / "pyproject.toml").open("a") as f:
        f.write("\n[tool.uwsgi-plugin]\nallow-outside-sources = true\n")
    build_wheel(absolute, tmp_path / "allowed-abs", f"-Cuwsgi={pip_uwsgi}")
    assert list((tmp_path / "allowed-abs").glob("*.whl"))


def test_name_must_be_a_c_identifier(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "uwsgiplugin.py").write_text("NAME = 'héllo'\nGCC_LIST = ['hello']\n")
    assert "does not set NAME to the plugin's name, a C identifier (got 'héllo')" in failing_build(project, tmp_path, f"-Cuwsgi={pip_uwsgi}")


def test_two_plugins_with_one_name(tmp_path, pip_uwsgi):
    project = copy_project(PACKAGES / "two-plugins", tmp_path / "p")
    (project / "second" / "uwsgiplugin.py").write_text("NAME = 'first'\nGCC_LIST = ['second']\n")
    assert "two plugin directories both build a plugin named 'first'" in failing_build(project, tmp_path, f"-Cuwsgi={pip_uwsgi}")


def fake_uwsgi(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_uwsgi_that_hangs(tmp_path):
    hanging = fake_uwsgi(tmp_path / "uwsgi", "sleep 30\n")
    env = clean_env(UWSGI_PLUGIN_BACKEND_UWSGI_TIMEOUT="1")
    start = time.monotonic()
    message = failing_build(copy_project(SAMPLE, tmp_path / "p"), tmp_path, f"-Cuwsgi={hanging}", env=env)
    assert time.monotonic() - start < 25
    assert f"{hanging} --version did not answer within 1 s" in message


def test_uwsgi_that_prints_garbage_cflags(tmp_path, pip_uwsgi):
    for name in ("config-py", "dot-h"):
        (tmp_path / name).write_bytes(subprocess.run([str(pip_uwsgi), f"--{name}"], capture_output=True).stdout)
    garbage = fake_uwsgi(tmp_path / "uwsgi", f"""case "$1" in
--version) echo 2.0.31 ;;
--config-py) cat '{tmp_path / "config-py"}' ;;
--dot-h) cat '{tmp_path / "dot-h"}' ;;
--cflags) echo 'hello; rm -rf $HOME' ;;
esac
""")
    message = failing_build(copy_project(SAMPLE, tmp_path / "p"), tmp_path, f"-Cuwsgi={garbage}")
    assert f"{garbage} is not a uwsgi binary: `uwsgi --cflags` printed 'hello; rm -rf $HOME'" in message


def test_pyproject_that_is_not_toml(tmp_path, pip_uwsgi):
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "pyproject.toml").write_text((project / "pyproject.toml").read_text() + "\n[tool.uwsgi-plugin\n")
    out = tmp_path / "out"
    out.mkdir()
    result = build_wheel(project, out, f"-Cuwsgi={pip_uwsgi}", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout
    # The frontend reads pyproject.toml first and says so; the backend, asked directly, says the same.
    direct = subprocess.run([sys.executable, "-c", "import uwsgi_plugin_backend as b; b.build_wheel('out')"],
                            cwd=project, capture_output=True, text=True, env=clean_env())
    assert direct.returncode == 1 and "uwsgi-plugin-backend: error:" in direct.stderr
    assert "pyproject.toml is not valid TOML" in direct.stderr and "Traceback" not in direct.stderr


def _really_read_only(tree: Path) -> bool:
    probe = tree / ".write-probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    return False


@pytest.fixture
def read_only_project(tmp_path):
    """A source tree no build can write to: a read-only bind mount, else file
    modes for a user who is not root. Root ignores file modes, so without a
    mount there is no read-only tree to test and the test is skipped."""
    project = copy_project(SAMPLE, tmp_path / "rw")
    mount = tmp_path / "ro"
    mount.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(project), str(mount)], capture_output=True).returncode == 0
    if mounted:
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], capture_output=True)
            if not _really_read_only(mount):
                pytest.skip("a bind mount could not be made read-only here")
            yield mount
        finally:
            subprocess.run(["umount", str(mount)], check=True)
        return
    for path in [project, *project.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    if not _really_read_only(project):
        pytest.skip("no read-only tree can be made: mount --bind failed and file modes do not bind root")
    yield project


def test_read_only_source_tree(read_only_project, tmp_path, pip_uwsgi):
    before = tree_digest(read_only_project)
    build_wheel(read_only_project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    assert tree_digest(read_only_project) == before
    assert len(list((tmp_path / "out").glob("*.whl"))) == 1


def test_output_directory_that_does_not_exist(tmp_path, pip_uwsgi):
    out = tmp_path / "not" / "yet" / "there"
    subprocess.run([sys.executable, "-c", f"import uwsgi_plugin_backend as b; b.build_wheel({str(out)!r}, {{'uwsgi': {str(pip_uwsgi)!r}}})"],
                   cwd=copy_project(SAMPLE, tmp_path / "p"), check=True, capture_output=True, env=clean_env())
    assert_only_complete_wheels(out)
    assert len(list(out.glob("*.whl"))) == 1


def test_wheel_placed_whole_across_file_systems(tmp_path):
    """The output directory on another file system than the build: a hidden copy, then one rename."""
    from uwsgi_plugin_backend.wheel.files import place

    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system here")
    source = tmp_path / "x-1.0-py3-none-any.whl"
    source.write_bytes(b"wheel bytes" * 1000)
    target_dir = Path(tempfile.mkdtemp(dir=other))
    try:
        placed = place(source, target_dir)
        assert placed.read_bytes() == b"wheel bytes" * 1000
        assert [p.name for p in target_dir.iterdir()] == [source.name]
    finally:
        shutil.rmtree(target_dir)


FLATTEN_ALIKE_HANDLER = r"""#include <uwsgi.h>
const char *x_part(void);
const char *underscore_x_part(void);
const char *sub_x_part(void);

static int hello_request(struct wsgi_request *wsgi_req) {
	char body[64];
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	snprintf(body, sizeof(body), "%s|%s|%s", x_part(), underscore_x_part(), sub_x_part());
	if (uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6)) return UWSGI_OK;
	uwsgi_response_write_body_do(wsgi_req, body, strlen(body));
	return UWSGI_OK;
}

struct uwsgi_plugin hello_plugin = {.name = "hello", .modifier1 = 250, .request = hello_request};
"""


def defined_symbols(shared_object: Path) -> set[str]:
    from elftools.elf.elffile import ELFFile

    with shared_object.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".dynsym")
        return {symbol.name for symbol in table.iter_symbols() if symbol["st_shndx"] != "SHN_UNDEF"}


def test_sources_whose_names_flatten_alike(tmp_path, pip_uwsgi):
    """x.c, _x.c and sub/x.c each get their own object: all three are linked
    into the plugin, and the request handler calls a function of each."""
    project = copy_project(SAMPLE, tmp_path / "p")
    (project / "sub").mkdir()
    (project / "hello.c").write_text(FLATTEN_ALIKE_HANDLER)
    (project / "x.c").write_text('const char *x_part(void) { return "x"; }\n')
    (project / "_x.c").write_text('const char *underscore_x_part(void) { return "_x"; }\n')
    (project / "sub" / "x.c").write_text('const char *sub_x_part(void) { return "sub/x"; }\n')
    (project / "uwsgiplugin.py").write_text("NAME = 'hello'\nGCC_LIST = ['hello', 'x', '_x', 'sub/x']\n")
    for build_dir in ([], [f"-Cbuild-dir={tmp_path / 'b'}"]):
        out = tmp_path / f"out{len(build_dir)}"
        build_wheel(project, out, f"-Cuwsgi={pip_uwsgi}", *build_dir)
        shared_object = installed_plugin(out, tmp_path / f"site{len(build_dir)}", "uwsgi_plugin_hello", "hello")
        real_plugin = shared_object.with_name("hello_plugin.real.so")  # beside its loader
        assert {"x_part", "underscore_x_part", "sub_x_part"} <= defined_symbols(real_plugin)
        answer = plugin_answer(pip_uwsgi, shared_object.parent, "hello", 250, tmp_path / f"log{len(build_dir)}")
        assert answer == "x|_x|sub/x"


def test_symlinks_in_the_plugin_directory_keep_their_meaning(tmp_path, pip_uwsgi):
    root = tmp_path / "repo"
    (root / "include").mkdir(parents=True)
    (root / "include" / "greeting.h").write_text('#define GREETING "Hello through a link"\n')
    project = copy_project(SAMPLE, root / "plugin")
    (project / "greeting.h").symlink_to("../include/greeting.h")
    source = project / "hello.c"
    source.write_text('#include "greeting.h"\n' + source.read_text().replace('"Hello from a wheel"', "GREETING"))
    before = tree_digest(root)
    build_wheel(project, tmp_path / "out", f"-Cuwsgi={pip_uwsgi}")
    assert tree_digest(root) == before
    [wheel] = (tmp_path / "out").glob("*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    [shared_object] = (tmp_path / "site").glob("uwsgi_plugin_hello/uwsgi_builds/*/hello_plugin.so")
    assert plugin_answer(pip_uwsgi, shared_object.parent, "hello", 250, tmp_path / "log") == "Hello through a link"


def test_no_c_compiler(tmp_path, pip_uwsgi):
    env = clean_env(CC="/no/such/cc", UWSGI_PLUGIN_BACKEND_CACHE_DIR=str(tmp_path / "cache"))
    message = failing_build(copy_project(SAMPLE, tmp_path / "p"), tmp_path, f"-Cuwsgi={pip_uwsgi}", env=env)
    assert "no C compiler: cannot run /no/such/cc" in message
