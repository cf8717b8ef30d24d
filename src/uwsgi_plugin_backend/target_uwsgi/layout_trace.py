"""The preprocessed text of many toggles from one preprocessor run
(target_uwsgi.layouts), where uwsgi.h's own conditionals are all a toggle
changes.

``toggled_texts`` runs gcc -E once on an instrumented copy of uwsgi.h and
gives, for each candidate it can, the text gcc -E would give with that
candidate toggled; layouts.learn then judges it as it judges a text it
preprocessed (layout_text). A candidate X is traced only when:

- uwsgi.h names X only in the conditions of #if/#ifdef/#ifndef/#elif (no
  macro call there but ``defined``), and no other file the base compile reads
  names it. In the copy, those conditions test an alias of X that has X's
  value in the base (``__ub_X``): the copy preprocesses as uwsgi.h does.
- Nothing else observes X: in the run, each +D candidate is defined as a
  sentinel name (a macro that builds X by ## and expands it would show the
  sentinel in the text, or in a -Wundef warning from #if), and gcc -dU
  reports no use of a -D candidate.

A +D candidate that another file names (AF_INET6) is not aliased, only
defined as a sentinel; when the base's gcc -dU and -Wundef show no test of it
while undefined (a header defines it before anything tests it) and the
sentinel shows nowhere, nothing observed it before that definition, after
which both runs define it alike: its toggled text is the base's. Not with
-Werror (or -pedantic-errors): there the redefinition fails the toggle.

Before each chain of conditionals that names a traced candidate, the copy
evaluates each group's condition with X toggled (``__ut_X`` where the chain
tests ``__ub_X``: 1 for +D, undefined for -D; other traced candidates at
their base alias) and marks the result; marks in each group show which one
the base takes; and each group of text alone is preprocessed there too
(``alt``), in the base's macro state, with #line keeping line numbers and
file name. A toggle's text is then the base text with the groups it switches
exchanged. That is exact while every group it switches holds text alone: the
macro state stays the base's but for X (which only the aliased conditions
read), so every mark made for X holds, and a group's alt text is what the
toggled run makes of it. A toggle that switches a group with a directive
(#include, #define, a nested #if), or whose text could join a macro call
across its ends (its parentheses do not balance, it starts with "(" or ends
with a name), is left to the preprocessor.

The run must reproduce the base text exactly once its instrumentation is
taken out, with every mark on a line of its own (none eaten by a macro call)
and made once: else nothing is traced. uwsgi.h with #include_next, #line,
__COUNTER__, __TIMESTAMP__ or __has_include_next, or CFLAGS with -I-, are not
traced at all.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from . import layout_text
from .compiler import run_compiler

PREFIX = "__uwsgi_trace_"
SOURCE_PIECE = re.compile(r"""\\\n|/\*.*?(?:\*/|\Z)|//(?:[^\n\\]|\\.)*|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|\n|[^\\/"'\n]+|.""",
                          re.S)
DIRECTIVE = re.compile(r"^\s*#\s*(\w*)(.*)$", re.S)
CONDITIONAL = ("if", "ifdef", "ifndef", "elif")
CALL = re.compile(r"\b(?!defined\b)([A-Za-z_]\w*)\s*\(")
UNTRACEABLE = re.compile(r"#\s*include_next|#\s*line|__COUNTER__|__TIMESTAMP__|__has_include_next")
# An identifier of a #if condition, not a part of a number (0x10100000L).
WORD = re.compile(r"""(?<![\w.'"])[A-Za-z_]\w*""")
MARK = re.compile(rf"^{PREFIX}(\w+)\n", re.M)
DEFINE_REPORT = re.compile(r"^#(?:define|undef) .*\n", re.M)  # gcc -dU's reports: no other output line starts so


@dataclasses.dataclass
class Line:
    first: int  # its physical lines, from 1
    last: int
    text: str  # continuations joined, comments a space
    directive: str | None  # "ifdef", "define", "" (a null directive) ...; None: text


@dataclasses.dataclass
class Chain:
    number: int
    groups: list[tuple[Line, str, list[int]]] = dataclasses.field(default_factory=list)  # directive, condition, lines


def logical_lines(source: str) -> list[Line]:
    """``source`` as the preprocessor reads its lines: a backslash-newline joins
    lines, a comment is a space, literals are kept whole."""
    lines: list[Line] = []
    out: list[str] = []
    number = first = 1
    for match in SOURCE_PIECE.finditer(source):
        piece = match.group()
        if piece == "\n":
            lines.append(_line(first, number, "".join(out)))
            out, number = [], number + 1
            first = number
        elif piece == "\\\n":
            number += 1
        elif piece.startswith(("/*", "//")):
            number += piece.count("\n")
            out.append(" ")
        else:
            out.append(piece)
    if out:
        lines.append(_line(first, number, "".join(out)))
    return lines


def _line(first: int, last: int, text: str) -> Line:
    match = DIRECTIVE.match(text)
    return Line(first, last, text, match.group(1) if match else None)


def chains(lines: list[Line]) -> tuple[list[Chain], dict[int, Chain]] | None:
    """uwsgi.h's conditional chains, and the chain each line index starts or continues; None when unbalanced."""
    found: list[Chain] = []
    at: dict[int, Chain] = {}
    stack: list[Chain] = []
    for index, line in enumerate(lines):
        if stack and line.directive not in ("elif", "else", "endif"):
            stack[-1].groups[-1][2].append(index)
        if line.directive in ("if", "ifdef", "ifndef"):
            chain = Chain(len(found))
            found.append(chain)
            stack.append(chain)
        if line.directive in ("if", "ifdef", "ifndef", "elif", "else"):
            if not stack:
                return None
            stack[-1].groups.append((line, _condition(line), []))
            at[index] = stack[-1]
        elif line.directive == "endif":
            if not stack:
                return None
            at[index] = stack.pop()
    return (found, at) if not stack else None


def _condition(line: Line) -> str:
    rest = DIRECTIVE.match(line.text).group(2).strip()  # type: ignore[union-attr]
    if line.directive == "ifdef":
        return f"defined({rest})"
    if line.directive == "ifndef":
        return f"!defined({rest})"
    return "1" if line.directive == "else" else rest


def _named(text: str, names: set[str]) -> set[str]:
    return {match.group() for match in WORD.finditer(text)} & names


def _aliased(condition: str, names: set[str], toggled: str | None = None) -> str:
    """``condition`` with each traced name X replaced by its base alias (``toggled`` by its toggle alias)."""
    return WORD.sub(lambda m: ("__ut_" if m.group() == toggled else "__ub_") + m.group() if m.group() in names
                    else m.group(), condition)


def toggled_texts(compiler: list[str], flags: list[str], kit_dir: Path, work: Path, dot_h: bytes,
                  candidates: dict[str, tuple[str, str | None]], headers: list[str], base_text: bytes,
                  base: layout_text.Text, undefined_first: set[str]) -> dict[str, bytes]:
    """Candidate ("-DX", "+DX") -> its toggled text, for the candidates this can
    trace. ``candidates`` gives each macro and its value in the base (None: undefined);
    ``headers`` the paths of the other files the base compile reads (as gcc -MD lists them, run
    in ``kit_dir``); ``base_text`` the base's gcc -E output (of ``work/tu.c``, which includes
    uwsgi.h), ``base`` that text split; ``undefined_first`` the macros its gcc -dU (or -Wundef)
    first saw undefined."""
    source = dot_h.decode("latin-1")
    kit_path = next((match.group(1) for match in layout_text.MARKER.finditer(base_text.decode("latin-1"))
                     if match.group(1).endswith('/uwsgi.h"')), None)  # as gcc spells it: "./uwsgi.h" with -I.
    if UNTRACEABLE.search(source) or kit_path is None or "-I-" in flags:
        return {}
    lines = logical_lines(source)
    structure = chains(lines)
    if structure is None:
        return {}
    found, at = structure
    names = {macro for macro, _ in candidates.values()}
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b")
    for line in lines:  # named anywhere but in a plain condition (a string counts too): not traced
        if line.directive not in CONDITIONAL or CALL.search(_condition(line)):
            names -= set(pattern.findall(line.text))
    try:  # or in another file (as a part of a longer name too)
        others = "\n".join((kit_dir / path).read_text(errors="replace") for path in headers)  # relative: to kit_dir
    except OSError:
        return {}
    elsewhere = {name for name in names if name in others}
    names -= elsewhere
    traced = {key: value for key, value in candidates.items() if value[0] in names}
    # A +D candidate another file defines before anything sees it (AF_INET6) is not aliased,
    # only watched by its sentinel: a -Werror would fail its toggle on the redefinition.
    watched = {key: value for key, value in candidates.items() if value[1] is None and value[0] in elsewhere
               and value[0] not in undefined_first} if not any("-Werror" in flag or "-pedantic-errors" in flag
                                                               for flag in flags) else {}
    if not traced and not watched:
        return {}
    output = _run(compiler, flags, kit_dir, work, lines, found, at, traced, names, kit_path, watched)
    if output is None:
        return {}
    text, used = output
    texts = _texts(text, found, traced, base, base_text)
    if texts is None:
        return {}
    return {**{key: value for key, value in texts.items() if traced[key][0] not in used},
            **{key: base_text for key in watched}}


def _run(compiler: list[str], flags: list[str], kit_dir: Path, work: Path, lines: list[Line], found: list[Chain],
         at: dict[int, Chain], traced: dict[str, tuple[str, str | None]], names: set[str], kit_path: str,
         watched: dict[str, tuple[str, str | None]]) -> tuple[str, set[str]] | None:
    """The instrumented run's output (-dU reports out, uwsgi.h named by its own path) and
    the -D candidates used outside uwsgi.h's conditions; None when it fails."""
    copy = work / "trace"
    copy.mkdir()
    out = [f"#define __ub_{macro} {value}" for macro, value in traced.values() if value is not None]
    out += [f"#define __ut_{macro} 1" for macro, value in traced.values() if value is None]
    out.append(f'#line 1 {kit_path}')
    aliased = {chain.number for chain in found if any(_named(cond, names) for _, cond, _ in chain.groups)}
    for index, line in enumerate(lines):
        chain = at.get(index)
        if chain is not None and chain.number in aliased:
            out += _instrumented(line, chain, lines, names, kit_path)
        else:
            out += _source(line)
    (copy / "uwsgi.h").write_text("\n".join(out) + "\n", encoding="latin-1")
    sentinels = [f"-Wp,-D{macro}={PREFIX}seen_{macro}" for macro, value in [*traced.values(), *watched.values()]
                 if value is None]
    # The copy is found first for tu.c's #include "uwsgi.h"; kit_dir next, as uwsgi.h's own directory is for it.
    result = run_compiler([*compiler, "-iquote", str(copy), "-iquote", str(kit_dir), *flags, f"-I{kit_dir}", *sentinels,
                           "-Wno-error", "-Wundef", "-Wsystem-headers", "-dU", "-E", str(work / "tu.c")], cwd=kit_dir)
    text = result.stdout.decode("latin-1")
    if result.returncode != 0 or f"{PREFIX}seen_" in text or f"{PREFIX}seen_" in result.stderr.decode("latin-1"):
        return None
    used = {report.split()[1] for report in DEFINE_REPORT.findall(text) if report.startswith("#define ")}
    return DEFINE_REPORT.sub("", text).replace(f'"{copy}/uwsgi.h"', kit_path), used


def _source(line: Line) -> list[str]:
    """A logical line as lines to write: its text, then a blank line for each physical
    line it joined, so that line numbers stay."""
    return [line.text, *[""] * (line.last - line.first)]


def _instrumented(line: Line, chain: Chain, lines: list[Line], names: set[str], kit_path: str) -> list[str]:
    """A directive of a watched chain, aliased, with its marks (see the module's doc)."""
    number = next((position for position, group in enumerate(chain.groups) if group[0] is line), len(chain.groups))
    out: list[str] = []
    if number > 0:
        out.append(f"{PREFIX}end_{chain.number}")  # inside the group before: the base's group ends here
    else:  # before the chain: the probes, and each group without directives preprocessed
        toggled = sorted(set().union(*(_named(condition, names) for _, condition, _ in chain.groups)))
        for position, (_, condition, members) in enumerate(chain.groups):
            for macro in toggled:
                out += [f"#if {_aliased(condition, names, macro)}", f"{PREFIX}probe_{chain.number}_{position}_{macro}",
                        "#endif"]
            if _self_contained([lines[item] for item in members]):
                out.append(f"{PREFIX}alt_{chain.number}_{position}")
                for item in members:
                    out += [f'#line {lines[item].first} {kit_path}', *_source(lines[item])]
                out.append(f"{PREFIX}altend")
        out.append(f"{PREFIX}chain_{chain.number}")
    kind, rest = line.directive, DIRECTIVE.match(line.text).group(2)  # type: ignore[union-attr]
    out += [f'#line {line.first} {kit_path}', f"#{kind} {_aliased(rest, names)}"]
    if number < len(chain.groups):
        out.append(f"{PREFIX}group_{chain.number}_{number}")
    return [*out, f'#line {line.last + 1} {kit_path}']


def _self_contained(group: list[Line]) -> bool:
    """Whether a group holds text only, and no macro call can reach across its ends: its
    parentheses balance, it does not start with "(" nor end with a name (a function-like
    macro's, called by what follows the #endif)."""
    if any(line.directive is not None for line in group):
        return False
    tokens = layout_text.TOKEN.findall("\n".join(line.text for line in group))
    return not tokens or (tokens.count("(") == tokens.count(")") and tokens[0] != "("
                          and not (tokens[-1][0].isalpha() or tokens[-1][0] in "_$"))


def _texts(text: str, found: list[Chain], traced: dict[str, tuple[str, str | None]], base: layout_text.Text,
           base_text: bytes) -> dict[str, bytes] | None:
    """The toggled texts, from the instrumented run's output; None when it does not hold."""
    marks = list(MARK.finditer(text))
    once = [match.group(1) for match in marks if match.group(1) != "altend"]
    if len(marks) != text.count(PREFIX) or len(once) != len(set(once)):
        return None  # a mark not on a line of its own (eaten by a macro call, or pasted), or made twice
    cuts: list[tuple[int, int, str]] = []  # what the base text lacks: marks and alt texts
    alts: dict[str, str] = {}
    spans: dict[int, list[int]] = {}  # chain -> its base group's text (start, end), or its place when none
    taken: dict[int, int] = {}
    probes: set[str] = set()
    opened = (0, "", 0)
    for match in marks:
        kind, _, rest = match.group(1).partition("_")
        if kind == "alt":
            opened = (match.start(), rest, match.end())
            continue
        if kind == "altend":
            alts[opened[1]] = text[opened[2]:match.start()]
            cuts.append((opened[0], match.end(), ""))
            continue
        cuts.append((match.start(), match.end(), ""))
        if kind == "probe":
            probes.add(rest)
        elif kind == "chain":
            spans[int(rest)] = [match.end(), match.end()]
        elif kind == "group":
            number, group = map(int, rest.split("_"))
            taken[number], spans[number] = group, [match.end(), match.end()]
        elif kind == "end" and int(rest) in taken:
            spans[int(rest)][1] = match.start()
    if not layout_text.same(layout_text.split(_cut(text, cuts).encode("latin-1")), base):
        return None  # the copy does not preprocess as uwsgi.h does
    results: dict[str, bytes] = {}
    for key, (macro, _) in traced.items():
        edits = []
        for chain in found:
            if chain.number not in spans or not any(_named(condition, {macro}) for _, condition, _ in chain.groups):
                continue  # not reached, or not testing the macro
            was = taken.get(chain.number)
            now = next((group for group in range(len(chain.groups)) if f"{chain.number}_{group}_{macro}" in probes), None)
            if now == was:
                continue
            if any(group is not None and f"{chain.number}_{group}" not in alts for group in (was, now)):
                break  # it switches a group with directives: left to the preprocessor
            start, end = spans[chain.number]
            edits.append((start, end, alts[f"{chain.number}_{now}"] if now is not None else ""))
        else:
            results[key] = _cut(text, cuts + edits).encode("latin-1") if edits else base_text
    return results


def _cut(text: str, cuts: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span replaced (the spans do not overlap)."""
    out: list[str] = []
    position = 0
    for start, end, replacement in sorted(cuts):
        out += [text[position:start], replacement]
        position = end
    return "".join([*out, text[position:]])
