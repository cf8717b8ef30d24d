"""The platform tag and the key's platform line follow the C library of the
uwsgi that loads the plugin, read from its ELF: a musl host (built here with
Debian's musl-gcc) gets musllinux, never manylinux."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.wheel.platform_tags import choose_platform
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime

pytestmark = pytest.mark.slow  # compiles four ELF files and loads auditwheel's policies: about 4 s a test


def compile_with(compiler: str, source: str, output: Path, *flags: str) -> Path:
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} is not installed: apt-get install -y musl-tools (scripts/test does)")
    source_file = output.with_suffix(".c")
    source_file.write_text(source)
    subprocess.run([compiler, *flags, str(source_file), "-o", str(output)], check=True)
    return output


@pytest.fixture
def elf_files(tmp_path) -> dict[str, Path]:
    program = "int main(void) { return 0; }\n"
    library = "int plugin_function(void) { return 1; }\n"
    return {
        "musl host": compile_with("musl-gcc", program, tmp_path / "musl-host"),
        "glibc host": compile_with("gcc", program, tmp_path / "glibc-host"),
        "musl plugin": compile_with("musl-gcc", library, tmp_path / "musl-plugin.so", "-shared", "-fPIC"),
        "glibc plugin": compile_with("gcc", library, tmp_path / "glibc-plugin.so", "-shared", "-fPIC"),
    }


def test_plugin_for_a_musl_uwsgi_is_musllinux(elf_files):
    tags = choose_platform([elf_files["musl plugin"]], hosts=[elf_files["musl host"]]).tags
    assert tags == ["musllinux_1_2_x86_64"]  # Debian's musl is 1.2.x
    # The same .so names no glibc symbol version: without the host, auditwheel would call it glibc.
    glibc_tags = choose_platform([elf_files["glibc plugin"]], hosts=[elf_files["glibc host"]]).tags
    # The plugin's own floor, with its legacy alias; the host (glibc 2.34 here) only names the C library.
    assert glibc_tags == ["manylinux1_x86_64", "manylinux_2_5_x86_64"]
    assert not any(tag.startswith("manylinux") for tag in choose_platform([elf_files["glibc plugin"]], hosts=[elf_files["musl host"]]).tags)


def test_hosts_of_two_c_libraries_are_refused(elf_files):
    with pytest.raises(BackendError, match="different C libraries"):
        choose_platform([elf_files["glibc plugin"]], hosts=[elf_files["musl host"], elf_files["glibc host"]])


def test_platform_line_reads_the_c_library(elf_files, tmp_path):
    assert runtime.platform_of(str(elf_files["musl host"])) == "machine=x86_64 class=64-le libc=musl"
    assert runtime.platform_of(str(elf_files["glibc host"])) == "machine=x86_64 class=64-le libc=glibc"
    # A console script (pyuwsgi's uwsgi) runs as its interpreter, here behind pip's /bin/sh exec line.
    script = tmp_path / "uwsgi"
    script.write_text(f"#!/bin/sh\n'''exec' \"{elf_files['musl host']}\" \"$0\" \"$@\"\n' '''\n")
    assert runtime.platform_of(str(script)) == "machine=x86_64 class=64-le libc=musl"
