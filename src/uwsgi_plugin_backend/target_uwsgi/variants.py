"""ABI variants: from one uwsgi binary, the other feature sets a uwsgi of the
same release could have been built with.

pip compiles uWSGI on each machine and turns features on by what is installed
(uwsgiconfig.py's "auto": SSL with libssl-dev, PCRE2 or PCRE with routing,
zlib, libcap), so one release has a different ABI on different machines. A
variant is the binary's kit with those ``-D`` macros changed in its CFLAGS;
its ABI is computed by ``target_abi`` exactly as for a binary built with those
flags (its own learning: a macro neutral in one feature set may matter in
another), so a real uwsgi with that feature set gets the same key.

The functions uwsgi.h declares only with a feature are recorded with the
variant: a plugin built for a variant without the feature must not call one
(plugin_build.symbols refuses the variant), and one built for a variant with
it may, though the binary at hand lacks it.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

from ..cache import CacheDir
from ..errors import BackendError, log
from ..runtime_api import read_flags, shell_words, tested_macros
from .abi import TargetAbi, VariantOf, target_abi
from .compiler import FEATURE_HEADERS, compiler_program, missing_header, run_compiler

# The features pip's uWSGI 2.0 turns on by itself, each with the macro sets a
# build can have (uwsgiconfig.py: routing is "auto", on with either PCRE).
FEATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "ssl": ((), ("UWSGI_SSL",)),
    "pcre": ((), ("UWSGI_PCRE", "UWSGI_ROUTING"), ("UWSGI_PCRE2", "UWSGI_ROUTING")),
    "zlib": ((), ("UWSGI_ZLIB",)),
    "libcap": ((), ("UWSGI_CAP",)),
}
# The libraries uwsgiconfig.py links for each macro's feature (the start of their
# sonames): a plugin built for a variant without it must not count on them.
FEATURE_LIBRARIES = {"UWSGI_SSL": ("libssl.", "libcrypto."), "UWSGI_PCRE2": ("libpcre2-8.",), "UWSGI_PCRE": ("libpcre.",),
                     "UWSGI_ZLIB": ("libz.",), "UWSGI_CAP": ("libcap.",)}
# Functions uwsgi.h declares whatever the features, but that uWSGI 2.0's core defines only
# when none of the macros is set (core/legion.c is compiled with SSL only, core/routing.c
# is all #ifdef UWSGI_ROUTING, alarm.c and config.c test PCRE): measured on pip's
# uWSGI 2.0.31 built with and without (tests/test_variants.py measures it again).
FEATURE_FUNCTIONS = {
    ("UWSGI_SSL",): frozenset({"uwsgi_legion_i_am_the_lord", "uwsgi_legion_lord_scroll", "uwsgi_legion_scrolls"}),
    ("UWSGI_ROUTING",): frozenset({"uwsgi_get_route_var", "uwsgi_register_route_var"}),
    ("UWSGI_PCRE", "UWSGI_PCRE2"): frozenset({"uwsgi_alarm_log_check", "uwsgi_logic_opt_if_hostname_match",
                                              "uwsgi_logic_opt_if_not_hostname_match"}),
}
# An identifier before "(": uwsgi.h's function declarations, and some words more
# (a type before a function pointer, a call in an inline body); the extra ones
# are never a symbol a plugin leaves undefined, so they change no verdict.
CALLED = re.compile(rb"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
LINE_MARKER = re.compile(rb'^# \d+ "(.*)"', re.M)


def _choices(wanted: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Each wanted feature's macro sets; a macro name is a feature of its own (with, without)."""
    names = list(FEATURES) if wanted == ("all",) else list(wanted)
    choices = {}
    for name in names:
        if name in FEATURES:
            choices[name] = FEATURES[name]
        elif name.isupper() or name.startswith("UWSGI_"):
            choices[name] = ((), (name,))
        else:
            raise BackendError(f"abi-variants: unknown feature {name!r}; known features: {', '.join(FEATURES)} "
                               "(or name a macro of uwsgi.h, such as UWSGI_DEBUG_BUFFER)")
    return choices


def _toggled_cflags(cflags: str, remove: set[str], add: list[str]) -> str | None:
    """``cflags`` without the plain ``-DX``/``-DX=V`` words of ``remove`` and with
    ``-DX`` for each of ``add``, as uwsgiconfig.py writes them; None when a macro
    is set in another spelling this cannot take out."""
    words = [w for w in cflags.split(" ") if not (w.startswith("-D") and w[2:].split("=", 1)[0] in remove)]
    toggled = " ".join([*words, *(f"-D{macro}" for macro in add)])
    defines = read_flags(toggled)[0]
    if any(defines.get(macro) is not None for macro in remove) or any(defines.get(macro) is None for macro in add):
        return None
    return toggled


def variant_cflags(base: TargetAbi, wanted: tuple[str, ...]) -> dict[str, str]:
    """label ("-UWSGI_SSL +UWSGI_ZLIB") -> CFLAGS, for every combination of the
    wanted features' macro sets but the binary's own. A feature none of whose
    macros changes a layout of this uwsgi.h is not varied; a macro set naming a
    macro uwsgi.h never tests is left out (a release without PCRE2)."""
    tested = tested_macros(base.kit.dot_h)
    layout = set(base.learned.layout_macros)
    defines = read_flags(base.kit.cflags)[0]
    axes = []
    for name, sets in _choices(wanted).items():
        macros = {macro for choice in sets for macro in choice}
        if not macros & layout:
            log(f"  abi-variants: {name} changes no layout of this uwsgi.h; not varied")
            continue
        axes.append((macros, [choice for choice in sets if set(choice) <= tested]))
    variants = {}
    for combination in itertools.product(*(choices for _, choices in axes)):
        on = {macro for choice in combination for macro in choice}
        varied = {macro for macros, _ in axes for macro in macros}
        remove = {macro for macro in varied - on if defines.get(macro) is not None}
        add = sorted(macro for macro in on if defines.get(macro) is None)
        if not remove and not add:
            continue  # the binary's own feature set
        label = " ".join([*(f"-{m}" for m in sorted(remove)), *(f"+{m}" for m in add)])
        cflags = _toggled_cflags(base.kit.cflags, remove, add)
        if cflags is None:
            log(f"  abi-variant {label} skipped: the binary's CFLAGS set one of its macros in a way this cannot undo")
            continue
        variants[label] = cflags
    return variants


def declared_functions(kit_dir: Path, cflags: str) -> set[str] | None:
    """The names uwsgi.h's own lines call or declare as functions, preprocessed
    with ``cflags``; None when it does not preprocess (a feature header missing)."""
    source = kit_dir / "uwsgi.h"
    result = run_compiler([*compiler_program(), *shell_words(cflags), f"-I{kit_dir}", "-E", "-x", "c", str(source)], cwd=kit_dir)
    if result.returncode != 0:
        return None
    names: set[str] = set()
    chunks = LINE_MARKER.split(result.stdout)  # text, file, text, file, text ...
    for file, text in zip(chunks[1::2], chunks[2::2]):
        if file.endswith(b"uwsgi.h"):
            names.update(name.decode() for name in CALLED.findall(text))
    return names


def variant_abis(base: TargetAbi, wanted: tuple[str, ...], kit_dir: Path, cache: CacheDir) -> list[TargetAbi]:
    """The ABI of each wanted variant of ``base``'s binary that uwsgi.h compiles
    for on this machine (its layouts learned into ``cache``); the others are
    skipped with one log line each."""
    base_functions = declared_functions(kit_dir, base.kit.cflags) or set()
    abis = []
    variants = variant_cflags(base, wanted)
    log(f"  abi-variants: {len(variants)} other feature sets; the layouts of each are learned once for this uwsgi.h "
        "(a first build takes a few seconds a set), then cached")
    for label, cflags in variants.items():
        kit = dataclasses.replace(base.kit, cflags=cflags)
        try:
            abi = target_abi(kit, cache, announce=False)
        except BackendError as error:
            log(f"  abi-variant {label} skipped: uwsgi.h does not compile with it here{_why(str(error))}")
            continue
        functions = declared_functions(kit_dir, cflags) or set()
        lacking = [word[1:] for word in label.split() if word.startswith("-")]
        defines = read_flags(cflags)[0]
        undeclared = {name for macros, names in FEATURE_FUNCTIONS.items()
                      if all(defines.get(macro) is None for macro in macros) for name in names}
        variant = VariantOf(label=label, binary_key=base.key, removed=frozenset(base_functions - functions) | undeclared,
                            added=frozenset(functions - base_functions),
                            unlinked=frozenset(prefix for macro in lacking for prefix in FEATURE_LIBRARIES.get(macro, ())))
        abis.append(dataclasses.replace(abi, variant=variant))
    return abis


def _why(error: str) -> str:
    """The reason in a few words: the header that is missing and its package, else the compiler's first error."""
    header = missing_header(error)
    if header is not None:
        package = FEATURE_HEADERS.get(header)
        return f" ({header} is not installed{': apt-get install ' + package if package else ''})"
    first = next((line.strip() for line in error.splitlines()[1:] if "error" in line), "")
    return f": {first}" if first else ""
