"""The load-time guard (C, guard/abi_key.h) and the runtime module (Python)
compute the same ABI hash from the same uwsgi.h text, CFLAGS, platform line and
what a build learned: the same shell words, the same reading of -D/-U/-Wp,
the same neutral options.

abi_key.h is compiled with guard/abi_selftest.c into a small program that
prints the hash of its inputs (files for uwsgi.h and the CFLAGS, which may hold
any byte but NUL, as uwsgi_get_cflags() can)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uwsgi_plugin_backend.plugin_build.loader import GUARD_DIR
from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime

MACROS = ["UWSGI_SSL", "UWSGI_PCRE", "UWSGI_PCRE2", "UWSGI_ROUTING", "UWSGI_XML", "_FILE_OFFSET_BITS", "A", "AB", "ABC", "X1"]
WHITESPACE = st.text(alphabet=" \t\n", min_size=1, max_size=3)
# Any character but NUL (a C string ends there), white space and quotes included.
ANY_TEXT = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=12)
WORD = st.text(alphabet=st.characters(blacklist_characters="\0 \t\n\v\f\r", blacklist_categories=("Cs",)), max_size=8)
macro = st.one_of(st.sampled_from(MACROS), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True))
value = st.one_of(st.none(), WORD, st.sampled_from(['"2.0.31"', '\\"x\\"', "'\"a b\"'", "1", "64"]))
define = st.builds(
    lambda spelling, name, value: spelling.format(name + ("" if value is None else f"={value}")),
    st.sampled_from(["-D{}", "-D {}", "-U{}", "-U {}", "-Wp,-D{}", "-Wp,-U{},-DZ", "-Xpreprocessor -D{}", "'-D{}'", '"-D{}"']),
    macro, value,
)
other = st.one_of(st.sampled_from(["-O2", "-I.", "-Wall", "-g", "-D", "-DX=", "-D=1", "-UUWSGI_SSL", "-I/usr/include/libxml2",
                                   "-fpack-struct=4", "-fshort-enums", "-m32", "-include x.h", "-std=c99", "-Wp,-MD,f",
                                   "-fPIC", "-pthread", "-fstack-protector-strong", "a\\ b", "-Wp,", "-Xpreprocessor",
                                   "-l", "-Wp,-MD", "-Wp,-MD,-UX", "-U__linux__", "\v-DX", "-Wp," + ",".join(["-O2"] * 300) + ",-UX"]),
                  WORD.filter(bool))


@st.composite
def cflags(draw) -> str:
    tokens = draw(st.lists(st.one_of(define, other), max_size=12))
    text = draw(st.one_of(st.just(""), WHITESPACE))
    for token in tokens:
        text += token + draw(WHITESPACE)
    return text if draw(st.booleans()) else text.rstrip()


learned = st.fixed_dictionaries({
    "layout_macros": st.lists(macro, unique=True, max_size=4),
    "neutral_macros": st.dictionaries(macro, st.one_of(st.none(), WORD, st.just('"2.0.30"')), max_size=4),
    "consulted": st.lists(macro, unique=True, max_size=6),
})
platform = st.builds(lambda libc, extra: f"machine=x86_64 class=64-le libc={libc} time_t=8 off_t=8{extra}",
                     st.sampled_from(["glibc", "musl"]), ANY_TEXT.filter(lambda t: "\n" not in t))
dot_h = st.builds(lambda text, tail: text + tail, ANY_TEXT, st.one_of(st.just(""), WHITESPACE))


@pytest.fixture(scope="module")
def guard_selftest(tmp_path_factory) -> Path:
    """abi_key.h as a program: abi-selftest DOT_H CFLAGS PLATFORM LEARNED."""
    program = tmp_path_factory.mktemp("guard") / "abi-selftest"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", str(GUARD_DIR / "abi_selftest.c"), "-o", str(program)], check=True)
    return program


def c_hash(program: Path, work: Path, dot_h_text: bytes, cflags_text: bytes, platform_line: str, what: dict) -> str:
    (work / "dot_h").write_bytes(dot_h_text)
    (work / "cflags").write_bytes(cflags_text)
    fields = [part for name in what["layout_macros"] for part in ("L", name)]
    for name, built in what["neutral_macros"].items():
        fields += ["n", name] if built is None else ["N", name, built]
    fields += [part for name in what["consulted"] for part in ("C", name)]
    (work / "learned").write_bytes(b"".join(field.encode() + b"\0" for field in fields))
    result = subprocess.run([str(program), str(work / "dot_h"), str(work / "cflags"), platform_line, str(work / "learned")],
                            capture_output=True, check=True)
    return result.stdout.decode().strip()


def python_hash(dot_h_text: bytes, cflags_text: str, platform_line: str, what: dict) -> str:
    return runtime.hash_of_parts(runtime.dot_h_hash(dot_h_text), platform_line, runtime.abi_lines(cflags_text, what))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dot_h_text=dot_h, cflags_text=cflags(), platform_line=platform, what=learned)
def test_guard_and_runtime_hash_alike(guard_selftest, tmp_path, dot_h_text, cflags_text, platform_line, what):
    expected = python_hash(dot_h_text.encode(), cflags_text, platform_line, what)
    got = c_hash(guard_selftest, tmp_path, dot_h_text.encode(), cflags_text.encode(), platform_line, what)
    assert got == expected, (dot_h_text, cflags_text, platform_line, what)


def test_hash_of_a_real_uwsgi_h(guard_selftest, tmp_path):
    """A fixed case with a real-looking CFLAGS line, so the property is not only about odd text."""
    cflags_text = ('-O2 -I. -Wall -D_FILE_OFFSET_BITS=64 -DUWSGI_ZLIB  -DUWSGI_PCRE2 -D UWSGI_SSL '
                   '-DUWSGI_VERSION="\\"2.0.31\\"" -DUWSGI_XML\t-Wp,-DUWSGI_ROUTING -fshort-enums -fPIC')
    what = {"layout_macros": ["UWSGI_PCRE2", "UWSGI_ROUTING", "UWSGI_SSL", "UWSGI_ZLIB"],
            "neutral_macros": {"UWSGI_VERSION": '"2.0.30"', "UWSGI_XML": "1"}, "consulted": ["_FILE_OFFSET_BITS"],
            }
    line = "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    text = b"struct uwsgi_plugin { const char *name; };\n\n"
    assert runtime.abi_lines(cflags_text, what) == [
        "-DUWSGI_PCRE2=1", "-DUWSGI_ROUTING=1", "-DUWSGI_SSL=1", "-DUWSGI_ZLIB=1", "-D_FILE_OFFSET_BITS=64", "-fshort-enums"]
    assert c_hash(guard_selftest, tmp_path, text, cflags_text.encode(), line, what) == python_hash(text, cflags_text, line, what)
