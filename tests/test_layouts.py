"""Learning which macros change a layout of uwsgi.h, on a small header whose
answer is known: the compiler and DWARF decide, not a list. And the text rules
that spare most compiles (target_uwsgi.layout_text) answer as the full method
(layouts.learn_fully) on synthetic headers and on every real uwsgi.h the suite has."""

from __future__ import annotations

from pathlib import Path

import pytest

from uwsgi_plugin_backend.errors import BackendError
from uwsgi_plugin_backend.runtime_api import platform_of, read_flags, shell_words
from uwsgi_plugin_backend.target_uwsgi import layout_text, layout_trace
from uwsgi_plugin_backend.target_uwsgi.compiler import compiler, run_compiler
from uwsgi_plugin_backend.target_uwsgi.kit import extract_kit
from uwsgi_plugin_backend.target_uwsgi.layouts import (TU, _consulted, _elf_file, _file_names, _preprocess,
                                                        candidate_toggles, compile_source, learn, learn_fully)

PLATFORM = "machine=x86_64 class=64-le libc=glibc"

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


WIDE = b"struct uwsgi_w { int w;\n#ifdef UWSGI_WIDE\n    int wide;\n#endif\n};\n"  # a macro that counts
# Each header below has macros that change a layout by one way only, and macros the text
# rules settle without a compile; each is learned with the CFLAGS listed (macros defined
# there are toggled off, the others on).
SYNTHETIC = {
    "a typedef": (b"""
#ifdef WIDE
typedef long uwsgi_len;
#else
typedef int uwsgi_len;
#endif
#ifdef UNUSED_TYPEDEF
typedef long uwsgi_unused_len;
#endif
struct uwsgi_a { uwsgi_len len; char c; };
""", ["-DWIDE", ""]),
    "a nested struct": (b"""
struct uwsgi_inner {
    int a;
#ifdef EXTRA
    int b;
#endif
};
struct uwsgi_outer { struct uwsgi_inner in; int after; };
struct uwsgi_anon { union { int i;
#ifdef BIGU
    long l;
#endif
    } u; struct { char c;
#ifdef INNER_NAME
    char d;
#endif
    }; int z; };
struct uwsgi_spelled {
#ifdef SPELLED_LONG
    signed int s;
#else
    int s;
#endif
};
""", ["-DEXTRA -DBIGU", "-DINNER_NAME", ""]),
    "an array size": (b"""
#ifdef MANY
#define UWSGI_SLOTS 8
#else
#define UWSGI_SLOTS 4
#endif
#ifdef SAME
#define UWSGI_FOUR (2 + 2)
#else
#define UWSGI_FOUR 4
#endif
struct uwsgi_arr { char slots[UWSGI_SLOTS]; char four[UWSGI_FOUR]; int n; };
""", ["-DMANY -DSAME", ""]),
    "an enum value": (b"""
#ifdef SHIFTED
#define UWSGI_BASE 10
#else
#define UWSGI_BASE 0
#endif
enum uwsgi_state { UWSGI_S0 = UWSGI_BASE, UWSGI_S1,
#ifdef SAME_VALUE
    UWSGI_S2 = UWSGI_BASE + 2
#else
    UWSGI_S2
#endif
};
enum { UWSGI_ANON_A,
#ifdef ANONX
    UWSGI_ANON_X,
#endif
    UWSGI_ANON_B };
""", ["-DSHIFTED", "-DANONX", ""]),
    "a bit field": (b"""
#ifdef WIDEBITS
#define UWSGI_BITS 3
#else
#define UWSGI_BITS 1
#endif
struct uwsgi_flags { unsigned a : UWSGI_BITS; unsigned b : 1; };
struct uwsgi_flags2 { unsigned a : 1;
#ifdef MOREBITS
    unsigned extra : 1;
#endif
#ifdef UNNAMED
    unsigned : 3;
#endif
    unsigned b : 1;
#ifdef SAME_BITS
    unsigned c : 1 + 0;
#else
    unsigned c : 1;
#endif
};
""", ["-DWIDEBITS -DMOREBITS", "-DUNNAMED", ""]),
    "a macro under another": (b"""
struct uwsgi_server {
    int workers;
#ifdef UWSGI_FEATURE
#ifdef UWSGI_FEATURE_EXTRA
    void *extra;
#endif
    int feature;
#endif
};
#if defined(UWSGI_OUTER) && defined(UWSGI_INNER)
int uwsgi_both(void);
#endif
""", ["-DUWSGI_FEATURE", "-DUWSGI_FEATURE -DUWSGI_FEATURE_EXTRA", "-DUWSGI_FEATURE_EXTRA", "-DUWSGI_OUTER"]),
    "declarations": (b"""
struct uwsgi_ret;
#ifdef FEAT_A
int uwsgi_feat_a(void);
#endif
#ifdef FEAT_B
void uwsgi_feat_b(char *, int) __attribute__((nonnull(1)));
extern int uwsgi_feat_b_count;
#endif
#if defined(NEEDS_TYPE)
missing_t *uwsgi_needs(void);
#endif
#ifdef BROKEN
#error this toggle does not compile
#endif
#ifdef EMBED
extern char EMBED;
#endif
#ifdef RETURNS_TAG
struct uwsgi_only_here *uwsgi_tagged(void);
#endif
void uwsgi_takes(struct uwsgi_only_here *);
void uwsgi_takes(struct uwsgi_only_here *);
#ifdef WIDE_RESULT
long uwsgi_width(void);
#else
int uwsgi_width(void);
#endif
struct uwsgi_w { char by_call[sizeof(uwsgi_width())]; };
#ifdef TYPEOF_SEEN
short uwsgi_seen(void);
#endif
#ifdef UWSGI_PLATFORM_Q
#include <no/such/header.h>
#endif
struct uwsgi_server {
    int workers;
#ifdef UWSGI_SSL
    void *ssl_ctx;
#endif
#ifndef UWSGI_SSL
    void *no_ssl;
#endif
#ifdef UWSGI_SWAP
    int swapped;
#else
    int swapped;
#endif
    void (*hook)(struct uwsgi_server *, int flags);
#ifdef HOOK_ARG
    int (*hook2)(int extra);
#else
    int (*hook2)(void);
#endif
};
""", ["-DFEAT_A -DRETURNS_TAG -DUWSGI_SSL -DUWSGI_SWAP -DWIDE_RESULT -DHOOK_ARG", "-DRETURNS_TAG",
      "-C -DRETURNS_TAG"]),  # -C: comments kept in gcc -E's text, which the text rules do not read
    "another header": (b"""
#include "uwsgi_extra.h"
#ifdef WITH_EXTRA
#include "uwsgi_extra2.h"
#endif
#ifdef WITH_PRAGMA
#include "uwsgi_pragma.h"
#endif
#ifdef WITH_UNUSED
#include "uwsgi_unused.h"
#endif
struct uwsgi_m { char c;
#ifdef WITH_EXTRA
    extra_t extra;
#endif
#ifdef SYSLIKE
    int sys;
#endif
    long l;
};
""", ["-DWITH_EXTRA -DSYSLIKE -DWITH_PRAGMA -DWITH_UNUSED", ""]),
    "headers taken away or moved": (b"""
#ifdef WITH_FEAT
#include "uwsgi_feat.h"
#endif
#include "uwsgi_common.h"
#ifdef WITH_BYVALUE
#include "uwsgi_byvalue.h"
#endif
#ifdef WITH_LATE_PACK
#include "uwsgi_pragma.h"
#endif
struct uwsgi_m { struct uwsgi_feat_s *feat; struct uwsgi_common common;
#ifdef USE_BYVALUE
    struct uwsgi_byval v;
#endif
    long l; };
""", ["-DWITH_FEAT -DWITH_BYVALUE -DUSE_BYVALUE -DWITH_LATE_PACK", "-DWITH_FEAT -DFEAT_COMMON"]),
    # A toggle that switches a group with an #include and one of a struct's members: relevant
    # (the struct has other members); but not for a struct that goes with the #include's
    # group itself (UWSGI_FEATX: only the base has uwsgi_featx, nothing to compare).
    "a feature's header and its members": (b"""
#ifdef UWSGI_FEATX
#include "uwsgi_byvalue.h"
struct uwsgi_featx { int a;
#ifdef UWSGI_FEATX
    int b;
#endif
};
#endif
struct uwsgi_core { int c;
#ifdef UWSGI_FEATY
    int y;
#endif
};
#ifdef UWSGI_FEATY
#include "uwsgi_common.h"
#endif
""", ["-DUWSGI_FEATX -DUWSGI_FEATY", ""]),
    # Headers whose declarations still compile without them, but mean less: a redeclaration
    # merges what the header said (an array's bound, an object's alignment), and a header
    # read later lands under uwsgi.h's own #pragma pack.
    "headers taken away, their declarations merged": (b"""
#ifdef WITH_BOUND
#include "uwsgi_bound.h"
#endif
#ifdef WITH_ALIGNED
#include "uwsgi_aligned.h"
#endif
#ifdef WITH_FEAT_FIRST
#include "uwsgi_feat2.h"
#endif
#ifdef UNUSED_PROTO
int uwsgi_unused_proto(void);
#endif
extern int uwsgi_slots[];
extern long uwsgi_counter;
#pragma pack(push, 1)
#include "uwsgi_common2.h"
#pragma pack(pop)
struct uwsgi_m { struct uwsgi_common2 common; char pad[__alignof__(uwsgi_counter)]; long n;
    __typeof__(uwsgi_slots) slots; };
""", ["-DWITH_BOUND", "-DWITH_ALIGNED", "-DWITH_FEAT_FIRST", ""]),
    # A header's attribute that only code generation reads: without it the toggled compile
    # fails (-Werror=return-type is a middle-end warning), a syntax-only compile passes.
    "a header's attribute code generation needs": (b"""
#ifdef WITH_NORETURN
#include "uwsgi_noreturn.h"
#endif
#ifdef UNUSED_PROTO
int uwsgi_unused_proto(void);
#endif
void uwsgi_die(void);
struct uwsgi_m { int a; };
int uwsgi_checked(int a) { if (a) return 1; uwsgi_die(); }
""", ["-Werror=return-type -DWITH_NORETURN"]),
    # CFLAGS that name the language and a header to read first: the syntax-only compiles of
    # preprocessed text must not preprocess it again (and read that header twice).
    "a header the CFLAGS include": (b"""
struct uwsgi_s { struct uwsgi_pre p; int b;
#ifdef WITH_B2
    int b2;
#endif
};
#ifdef WITH_PROTO
int uwsgi_proto(void);
#endif
#ifdef WITH_ALIAS
void uwsgi_aliased(void) __attribute__((alias("uwsgi_nowhere")));
#endif
""", ["-x c -include uwsgi_pre.h -DWITH_B2"]),  # +DWITH_ALIAS: only code generation refuses the alias
    # A feature's group with directives (#include, #define) and a struct's members under the
    # same macro: the directives may change what the struct's groups read, so its text with
    # only those groups exchanged (the partial text the trace once gave, #24) may have other
    # members where the toggled compile has the same layout, or no such struct at all.
    # UWSGI_FX is neutral in each (UWSGI_WIDE counts).
    "a feature's macro names a member": (b"""
#ifdef UWSGI_FX
#include <stddef.h>
#define UWSGI_FX_FIELD b
#endif
struct uwsgi_s { int a;
#ifdef UWSGI_FX
    int UWSGI_FX_FIELD;
#else
    int b;
#endif
};
""" + WIDE, ["", "-DUWSGI_FX"]),
    "a feature's header's macro names a member": (b"""
#ifdef UWSGI_FX
#include "uwsgi_fx.h"
#endif
struct uwsgi_s { int a;
#ifdef UWSGI_FX
    int UWSGI_FX_FIELD;
#else
    int b;
#endif
};
""" + WIDE, ["", "-DUWSGI_FX"]),
    "a struct whose start the feature's group holds": (b"""
#ifdef UWSGI_FX
#include <stddef.h>
struct uwsgi_s { int a;
#else
struct uwsgi_other { int a;
#endif
#ifdef UWSGI_FX
    int b;
#endif
};
""" + WIDE, ["", "-DUWSGI_FX"]),
    "a struct under a macro the feature's group defines": (b"""
#ifdef UWSGI_FX
#include <stddef.h>
#define UWSGI_HAVE_S 1
#endif
#ifdef UWSGI_HAVE_S
struct uwsgi_s { int a;
#ifdef UWSGI_FX
    int b;
#endif
};
#endif
""" + WIDE, ["-DUWSGI_FX"]),
    "a member's condition reads a macro the feature's group defines": (b"""
#ifdef UWSGI_FX
#include <stddef.h>
#define UWSGI_NO_B 1
#endif
struct uwsgi_s { int a;
#if defined(UWSGI_FX) && !defined(UWSGI_NO_B)
    int b;
#endif
};
""" + WIDE, [""]),
}
EXTRA_HEADERS = {
    "uwsgi_pre.h": b"struct uwsgi_pre { int a; };\n",
    # uwsgi_feat.h reads uwsgi_common.h first: without it, uwsgi_common.h is read at uwsgi.h's own #include.
    "uwsgi_feat.h": b'#define UWSGI_FEAT_SEEN 1\n#include "uwsgi_common.h"\nstruct uwsgi_feat_s { int a; };\n'
                    b"typedef int uwsgi_feat_t;\n",
    "uwsgi_common.h": b"#ifndef UWSGI_COMMON_H\n#define UWSGI_COMMON_H\nstruct uwsgi_common { long c;\n"
                      b"#if defined(FEAT_COMMON) && defined(UWSGI_FEAT_SEEN)\n  int feat;\n#endif\n};\n#endif\n",
    "uwsgi_byvalue.h": b"struct uwsgi_byval { int v; };\n",
    "uwsgi_bound.h": b"extern int uwsgi_slots[9];\n",
    "uwsgi_aligned.h": b"extern long uwsgi_counter __attribute__((aligned(64)));\n",
    "uwsgi_feat2.h": b'#include "uwsgi_common2.h"\n',
    "uwsgi_common2.h": b"#ifndef UWSGI_COMMON2_H\n#define UWSGI_COMMON2_H\nstruct uwsgi_common2 { char a; long b; };\n#endif\n",
    "uwsgi_noreturn.h": b"void uwsgi_die(void) __attribute__((noreturn));\n",
    "uwsgi_extra.h": b"#ifdef SYSLIKE\ntypedef int uwsgi_syslike_t;\n#endif\n",
    "uwsgi_extra2.h": b"typedef long extra_t;\n",
    "uwsgi_pragma.h": b"#pragma pack(1)\n",
    "uwsgi_unused.h": b"struct uwsgi_unused { int a; };\nint uwsgi_unused_count(struct uwsgi_unused *);\n",
    "uwsgi_fx.h": b"#define UWSGI_FX_FIELD b\n",
}


@pytest.mark.unlearned
@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_text_rules_answer_as_the_full_method(tmp_path: Path, case: str, machine):
    header, cflags_list = SYNTHETIC[case]
    (tmp_path / "uwsgi.h").write_bytes(header)
    for name, text in EXTRA_HEADERS.items():
        (tmp_path / name).write_bytes(text)
    answers = []
    for cflags in cflags_list:
        cflags = f"-I. -O2 {cflags}"
        full = learn_fully(PLATFORM, header, cflags, tmp_path, compiler())
        assert learn(PLATFORM, header, cflags, tmp_path, compiler(), machine.cache_dir) == full, (case, cflags)
        answers.append(full)
    # Some macro counts and some does not: agreeing on "all" or "none" would prove little.
    assert any(one.layout_macros for one in answers) and any(one.neutral_macros for one in answers)


def _dwarf_members(obj: Path) -> dict[str, list[str]]:
    """The member names DWARF gives each named struct and union of uwsgi.h."""
    found = {}
    with obj.open("rb") as f:
        dwarf = _elf_file(f).get_dwarf_info()
        for unit in dwarf.iter_CUs():
            files = _file_names(dwarf, unit)
            for die in unit.get_top_DIE().iter_children():
                name, where = die.attributes.get("DW_AT_name"), die.attributes.get("DW_AT_decl_file")
                if die.tag in ("DW_TAG_structure_type", "DW_TAG_union_type") and name and where \
                        and files.get(where.value) == "uwsgi.h":
                    key = f"{die.tag[7:].replace('_type', '').replace('structure', 'struct')} {name.value.decode()}"
                    found[key] = [child.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in child.attributes else ""
                                  for child in die.iter_children() if child.tag == "DW_TAG_member"]
    return found


def _members_read_as_dwarf_lists_them(cflags: str, kit_dir: Path, work: Path) -> int:
    """The member rule's premise: where layout_text reads a struct's member names, they
    are DWARF's, in order. The number of structs read."""
    flags = shell_words(cflags)
    assert compile_source(compiler(), flags, kit_dir, TU, work / "base.o") is None
    (work / "tu.c").write_text(TU)
    text = run_compiler([*compiler(), *flags, f"-I{kit_dir}", "-E", str(work / "tu.c")], cwd=kit_dir).stdout
    read = {key: names for key, names in layout_text.structs(layout_text.split(text).units).items() if names is not None}
    dwarf = _dwarf_members(work / "base.o")
    assert read == {key: dwarf[key] for key in read}
    return len(read)


def test_member_names_are_read_as_dwarf_lists_them(tmp_path: Path):
    header = b"""#include <sys/stat.h>
struct uwsgi_forms {
    unsigned a : 3, : 2, b : 1;
    int (*handler)(struct uwsgi_forms *self, const char *name);
    char *(*names[4])(void);
    struct { int x; } named, *pointer;
    union { int i; long l; };
    enum uwsgi_kind { UWSGI_K1, UWSGI_K2 } kind;
    enum { UWSGI_LONE };
    const volatile unsigned long long __attribute__((aligned(16))) aligned;
    __typeof__(int) typed;
    struct stat st;
    __extension__ unsigned long long ext;
    char flexible[];
};
typedef struct uwsgi_typed { uint16_t_like_t *p; } uwsgi_typed_t;
"""
    (tmp_path / "uwsgi.h").write_bytes(b"typedef int uint16_t_like_t;\n" + header)
    work = tmp_path / "work"
    work.mkdir()
    assert _members_read_as_dwarf_lists_them("-I.", tmp_path, work) == 2


def _traced_as_preprocessed(dot_h: bytes, cflags: str, kit_dir: Path, work: Path) -> list[str]:
    """The trace's premise: each text layout_trace gives is the one gcc -E gives for
    that toggle (the same tokens, other files' text and files). The candidates traced."""
    flags, source = shell_words(cflags), work / "tu.c"
    work.mkdir(exist_ok=True)
    source.write_text(TU)
    base_text = _preprocess(compiler(), flags, kit_dir, source)
    consulted, read, undefined_first = _consulted(compiler(), flags, kit_dir, source)
    defines = read_flags(cflags)[0]
    toggles = candidate_toggles(cflags, dot_h)
    candidates = {key: (key[2:], defines.get(key[2:])) for key in toggles}
    traced = layout_trace.toggled_texts(compiler(), flags, kit_dir, work, dot_h, candidates,
                                        [path for path in read if Path(path).name != "uwsgi.h"], base_text,
                                        layout_text.split(base_text), undefined_first)
    for key, text in traced.items():
        real = _preprocess(compiler(), toggles[key], kit_dir, source)
        assert layout_text.same(layout_text.split(text), layout_text.split(real)), key
    return sorted(traced)




TRACE_HEADER = b"""
#include "uwsgi_trace_extra.h"
#define UWSGI_W(x) x
struct uwsgi_server {
    int workers;
#ifdef UWSGI_MEMBER
    int member;     /* a group of text */
#endif
#if UWSGI_LEVEL > 2
    int deep;
#elif defined(UWSGI_MEMBER) && !defined(UWSGI_OTHER)
    int shallow;
#else
    long fallback;
#endif
    int
#ifdef UWSGI_SPLIT
    UWSGI_W
#endif
    (split);        /* a macro call across the #endif */
};
#ifdef UWSGI_NESTED
#ifdef UWSGI_INNER
int uwsgi_inner(void);
#endif
#endif
#ifdef UWSGI_PROTO
int uwsgi_proto(void);
#endif
#ifdef UWSGI_ELSEWHERE
int uwsgi_elsewhere(void);
#endif
#ifdef UWSGI_IN_TEXT
extern char UWSGI_IN_TEXT;
#endif
#ifdef UWSGI_FROM_HEADER
int uwsgi_from_header(void);
#endif
#ifdef UWSGI_LATE
int uwsgi_late(void);
#endif
#include "uwsgi_trace_late.h"
"""


def test_the_trace_gives_the_preprocessors_text(tmp_path: Path):
    (tmp_path / "uwsgi.h").write_bytes(TRACE_HEADER)
    (tmp_path / "uwsgi_trace_extra.h").write_bytes(b"#ifdef UWSGI_ELSEWHERE\n#endif\n#define UWSGI_FROM_HEADER 2\n")
    (tmp_path / "uwsgi_trace_late.h").write_bytes(b"#define UWSGI_LATE 2\n")
    work = tmp_path / "work"
    work.mkdir()
    traced = _traced_as_preprocessed(TRACE_HEADER, "-I. -DUWSGI_LEVEL=3 -DUWSGI_PROTO -DUWSGI_NESTED", tmp_path, work)
    # Not traced: a group with a nested #if (NESTED), a macro call across a group's end
    # (SPLIT), a name another file tests (ELSEWHERE) or defines after uwsgi.h tests it
    # (LATE), or a name in text (IN_TEXT). FROM_HEADER is defined before anything sees it.
    assert traced == ["+DUWSGI_FROM_HEADER", "+DUWSGI_INNER", "+DUWSGI_MEMBER", "+DUWSGI_OTHER", "-DUWSGI_LEVEL",
                      "-DUWSGI_PROTO"]
    assert _traced_as_preprocessed(TRACE_HEADER, "-I. -Werror -DUWSGI_LEVEL=3", tmp_path, work / "again") \
        == ["+DUWSGI_INNER", "+DUWSGI_MEMBER", "+DUWSGI_OTHER", "+DUWSGI_PROTO", "-DUWSGI_LEVEL"]  # not FROM_HEADER


def test_the_trace_gives_up_on_a_name_built_by_pasting(tmp_path: Path, machine):
    """UWSGI_PASTED is named nowhere but in a condition; a macro builds it with ## and
    tests it: the sentinel it stands for shows, and nothing is traced."""
    header = b"""#define UWSGI_CAT(a, b) a##b
#define UWSGI_XCAT(a, b) UWSGI_CAT(a, b)
struct uwsgi_server { int a;
#if UWSGI_XCAT(UWSGI_, PASTED)
    int pasted;
#endif
#ifdef UWSGI_MEMBER
    int member;
#endif
};
#ifdef UWSGI_PASTED
#endif
"""
    (tmp_path / "uwsgi.h").write_bytes(header)
    work = tmp_path / "work"
    work.mkdir()
    assert _traced_as_preprocessed(header, "-I.", tmp_path, work) == []
    learned = learn(PLATFORM, header, "-I.", tmp_path, compiler(), machine.cache_dir)
    assert learned == learn_fully(PLATFORM, header, "-I.", tmp_path, compiler())
    assert {"UWSGI_MEMBER", "UWSGI_PASTED"} <= set(learned.layout_macros)


def _learned_both_ways(binary: Path, tmp_path: Path, machine):
    kit = extract_kit(binary, machine.uwsgi_timeout)
    kit.write(tmp_path)
    elf_part = platform_of(str(binary))
    fast = learn(elf_part, kit.dot_h, kit.cflags, tmp_path, compiler(), machine.cache_dir)
    return fast, learn_fully(elf_part, kit.dot_h, kit.cflags, tmp_path, compiler())


@pytest.mark.unlearned
@pytest.mark.parametrize("variant", ["default", "lean", "nossl"])
def test_text_rules_answer_as_the_full_method_for_pip_uwsgi(tmp_path: Path, pip_variants, variant: str, machine):
    fast, full = _learned_both_ways(pip_variants[variant], tmp_path, machine)
    assert fast == full
    assert "UWSGI_ROUTING" in full.layout_macros
    kit = extract_kit(pip_variants[variant], machine.uwsgi_timeout)
    work = tmp_path / "work"
    work.mkdir()
    assert _members_read_as_dwarf_lists_them(kit.cflags, tmp_path, work) > 80
    (work / "trace").mkdir()
    assert len(_traced_as_preprocessed(kit.dot_h, kit.cflags, tmp_path, work / "trace")) >= 5


@pytest.mark.slow
@pytest.mark.unlearned
def test_text_rules_answer_as_the_full_method_for_debian_uwsgi(tmp_path: Path, debian_uwsgi, machine):
    fast, full = _learned_both_ways(debian_uwsgi, tmp_path, machine)
    assert fast == full
    assert "UWSGI_SSL" in full.layout_macros
    kit = extract_kit(debian_uwsgi, machine.uwsgi_timeout)
    work = tmp_path / "work"
    work.mkdir()
    assert _members_read_as_dwarf_lists_them(kit.cflags, tmp_path, work) > 80
    (work / "trace").mkdir()
    assert len(_traced_as_preprocessed(kit.dot_h, kit.cflags, tmp_path, work / "trace")) >= 5


@pytest.mark.unlearned
def test_text_rules_answer_as_the_full_method_for_pyuwsgi(tmp_path: Path, pyuwsgi_venv, machine):
    fast, full = _learned_both_ways(pyuwsgi_venv.uwsgi, tmp_path, machine)
    assert fast == full
    assert "UWSGI_ROUTING" in full.layout_macros
    kit = extract_kit(pyuwsgi_venv.uwsgi, machine.uwsgi_timeout)
    (tmp_path / "work").mkdir()
    assert len(_traced_as_preprocessed(kit.dot_h, kit.cflags, tmp_path, tmp_path / "work")) >= 5


@pytest.mark.unlearned
def test_a_first_build_says_it_learns_once(tmp_path: Path, capfd, machine):
    (tmp_path / "uwsgi.h").write_bytes(HEADER)
    learn(PLATFORM, HEADER, "-DFOO", tmp_path, compiler(), machine.cache_dir)
    [line] = capfd.readouterr().err.splitlines()
    assert "first build for this uwsgi.h and CFLAGS" in line and "cached afterwards in " in line
    learn(PLATFORM, HEADER, "-DFOO", tmp_path, compiler(), machine.cache_dir)
    assert capfd.readouterr().err == ""


@pytest.mark.unlearned
def test_a_uwsgi_h_only_code_generation_refuses_is_an_error(tmp_path: Path, machine):
    """uwsgi.h passes a syntax-only compile, but its code does not assemble: the base
    compile fails, and so would a plugin's. Both methods say so, whichever toggles
    their text settles (here every one: FOO a member, BAR a prototype)."""
    header = b"""
struct uwsgi_s { int a;
#ifdef FOO
    int b;
#endif
};
#ifdef BAR
int uwsgi_bar(void);
#endif
void uwsgi_bad(void) { __asm__("uwsgi_not_an_instruction"); }
"""
    (tmp_path / "uwsgi.h").write_bytes(header)
    with pytest.raises(BackendError, match="cannot compile uwsgi.h with the binary's CFLAGS"):
        learn_fully(PLATFORM, header, "-I. -O2", tmp_path, compiler())
    with pytest.raises(BackendError, match="cannot compile uwsgi.h with the binary's CFLAGS"):
        learn(PLATFORM, header, "-I. -O2", tmp_path, compiler(), machine.cache_dir)
