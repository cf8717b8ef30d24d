"""The load-time guard (C) and the runtime module (Python) compute the same
ABI hash from the same uwsgi.h text, CFLAGS, platform line and macro list.

The guard's own source is compiled with -DGUARD_SELFTEST into a small program
that prints the hash of its inputs (files for uwsgi.h and the CFLAGS, which
may hold any byte but NUL, as uwsgi_get_cflags() can)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uwsgi_plugin_backend.load_guard import GUARD_SOURCE
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime

MACROS = ["UWSGI_SSL", "UWSGI_PCRE", "UWSGI_PCRE2", "UWSGI_ROUTING", "UWSGI_XML", "_FILE_OFFSET_BITS", "A", "AB", "ABC", "X1"]
WHITESPACE = st.text(alphabet=" \t\n\v\f\r", min_size=1, max_size=3)
# Any character but NUL (a C string ends there), white space and quotes included.
ANY_TEXT = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)
macro = st.one_of(st.sampled_from(MACROS), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True))
define = st.builds(
    lambda name, value: f"-D{name}" + ("" if value is None else f"={value}"),
    macro,
    st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_characters="\0 \t\n\v\f\r", blacklist_categories=("Cs",)), max_size=8)),
)
other = st.one_of(st.sampled_from(["-O2", "-I.", "-Wall", "-g", "-D", "-DX=", "-D=1", "-UUWSGI_SSL", "-I/usr/include/libxml2"]),
                  st.text(alphabet=st.characters(blacklist_characters="\0 \t\n\v\f\r", blacklist_categories=("Cs",)), min_size=1, max_size=8))


@st.composite
def cflags(draw) -> str:
    tokens = draw(st.lists(st.one_of(define, other), max_size=12))
    text = draw(st.one_of(st.just(""), WHITESPACE))
    for token in tokens:
        text += token + draw(WHITESPACE)
    return text if draw(st.booleans()) else text.rstrip()


platform = st.builds(lambda libc, extra: f"machine=x86_64 class=64-le libc={libc} time_t=8 off_t=8{extra}",
                     st.sampled_from(["glibc", "musl"]), ANY_TEXT.filter(lambda t: "\n" not in t))
dot_h = st.builds(lambda text, tail: text + tail, ANY_TEXT, st.one_of(st.just(""), WHITESPACE))


@pytest.fixture(scope="module")
def guard_selftest(tmp_path_factory) -> Path:
    """The guard's hash routine as a program: guard-selftest DOT_H CFLAGS PLATFORM TESTED."""
    program = tmp_path_factory.mktemp("guard") / "guard-selftest"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-DGUARD_SELFTEST", str(GUARD_SOURCE), "-o", str(program)], check=True)
    return program


def c_hash(program: Path, work: Path, dot_h_text: bytes, cflags_text: bytes, platform_line: str, macros: list[str]) -> str:
    (work / "dot_h").write_bytes(dot_h_text)
    (work / "cflags").write_bytes(cflags_text)
    tested = " " + " ".join(macros) + " "
    result = subprocess.run([str(program), str(work / "dot_h"), str(work / "cflags"), platform_line, tested],
                            capture_output=True, check=True)
    return result.stdout.decode().strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dot_h_text=dot_h, cflags_text=cflags(), platform_line=platform,
       macros=st.lists(st.one_of(st.sampled_from(MACROS), macro), unique=True, max_size=6))
def test_guard_and_runtime_hash_alike(guard_selftest, tmp_path, dot_h_text, cflags_text, platform_line, macros):
    expected = runtime.abi_hash(cflags_text, dot_h_text.encode(), macros, platform_line)
    got = c_hash(guard_selftest, tmp_path, dot_h_text.encode(), cflags_text.encode(), platform_line, macros)
    assert got == expected, (dot_h_text, cflags_text, platform_line, macros)


def test_hash_of_a_real_uwsgi_h(guard_selftest, tmp_path):
    """A fixed case with a real-looking CFLAGS line, so the property is not only about odd text."""
    cflags_text = ('-O2 -I. -Wall -D_FILE_OFFSET_BITS=64 -DUWSGI_ZLIB  -DUWSGI_PCRE2 -DUWSGI_SSL '
                   '-DUWSGI_VERSION="\\"2.0.31\\"" -DUWSGI_XML\t-DUWSGI_ROUTING')
    macros = ["UWSGI_PCRE2", "UWSGI_ROUTING", "UWSGI_SSL", "UWSGI_ZLIB"]
    line = "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    text = b"struct uwsgi_plugin { const char *name; };\n\n"
    assert runtime.abi_defines(cflags_text, macros) == ["-DUWSGI_PCRE2", "-DUWSGI_ROUTING", "-DUWSGI_SSL", "-DUWSGI_ZLIB"]
    assert c_hash(guard_selftest, tmp_path, text, cflags_text.encode(), line, macros) == runtime.abi_hash(cflags_text, text, macros, line)
