"""Learning which macros change a layout of uwsgi.h, on a small header whose
answer is known: the compiler and DWARF decide, not a list."""

from __future__ import annotations

from pathlib import Path

import pytest

from uwsgi_plugin_backend.target_uwsgi.layouts import learn
from uwsgi_plugin_backend.target_uwsgi.compiler import compiler

HEADER = b"""
struct uwsgi_server {
    int workers;
#ifdef FOO
    int foo;            /* FOO moves nothing before it but grows the struct */
#endif
    unsigned flag:1;
};
#ifdef BAR
int uwsgi_bar(void);    /* BAR only declares a function */
#endif
#ifdef BAZ
struct only_with_baz { int x; };   /* BAZ only adds a type nothing uses */
#endif
#if defined(SIZE_BIG)
typedef long uwsgi_size;
#else
typedef int uwsgi_size;
#endif
enum uwsgi_state { STATE_A,
#ifdef QUX
    STATE_Q,
#endif
    STATE_B };
#ifdef BROKEN
#error this toggle does not compile
#endif
"""


@pytest.mark.unlearned
def test_learns_the_macros_that_change_layouts(tmp_path: Path, machine):
    (tmp_path / "uwsgi.h").write_bytes(HEADER)
    cflags = "-O2 -DBAR -DFOO  -DUNUSED=1\t-I."
    learned = learn("machine=x86_64 class=64-le libc=glibc", HEADER, cflags, tmp_path, compiler(), machine.cache_dir)
    # FOO (a member), SIZE_BIG (a typedef), QUX (an enumerator's value) change layouts; BROKEN
    # counts because its toggle fails; BAR, BAZ and UNUSED do not.
    assert learned.layout_macros == ["BROKEN", "FOO", "QUX", "SIZE_BIG"]
    assert learned.platform == "machine=x86_64 class=64-le libc=glibc time_t=8 off_t=8"
    # Cached: a header that would teach otherwise is not compiled again for the same inputs.
    (tmp_path / "uwsgi.h").write_bytes(b"#error not read again\n")
    assert learn("machine=x86_64 class=64-le libc=glibc", HEADER, cflags, tmp_path, compiler(), machine.cache_dir).layout_macros == learned.layout_macros


@pytest.mark.unlearned
def test_a_macro_tested_by_value_while_undefined_is_learned(tmp_path: Path, machine):
    """`#if BYVALUE` of an undefined macro: gcc -dU does not report it, -Wundef does;
    it is tried, and it changes a layout."""
    header = b"struct uwsgi_server {\n    int a;\n#if BYVALUE\n    int b;\n#endif\n};\n#if UNUSED_BY_VALUE\nint f(void);\n#endif\n"
    (tmp_path / "uwsgi.h").write_bytes(header)
    learned = learn("machine=x86_64 class=64-le libc=glibc", header, "-O2", tmp_path, compiler(), machine.cache_dir)
    assert learned.layout_macros == ["BYVALUE"]
    assert {"BYVALUE", "UNUSED_BY_VALUE"} <= set(learned.consulted)
    assert "UNUSED_BY_VALUE" in learned.neutral_macros
