"""What two preprocessed texts of uwsgi.h prove about a toggle of layout
learning (target_uwsgi.layouts), so that the compiler runs only where it must.

The full method (layouts.learn_fully) compiles, with debug information, every
toggle whose preprocessed text differs from the base's, and calls the
candidate relevant when that compile fails or a type that uwsgi.h declares in
both compiles gets another DWARF layout. ``verdict`` compares the two texts
(gcc -E, line markers kept) instead and answers as that method would:

- ``NEUTRAL``: the same tokens (line markers and blank lines aside): the
  compiler is handed the same program.
- ``RELEVANT``: a struct or union that uwsgi.h defines at file scope in both
  texts lists other member names. Either the toggled compile fails, or that
  type is in both compiles and its DWARF layout, which names every member in
  order, differs. (Member names are read only where the reading is certain:
  any declaration form not understood leaves the struct out.)
- ``NEUTRAL``: the rest of both texts is the same, token for token, and they
  differ only by prototypes taken away (``int f(char *);``, no body, no
  typedef, no initializer) whose names appear nowhere else in either text and
  whose return types name no struct, union or enum. Nothing refers to them
  and they declare no file-scope tag, so every other declaration means,
  compiles and lays out as before.
- ``CHECK``: the same, but prototypes are added too (or one taken away names a
  tag): no layout can change, but the new declarations may not compile (a
  type only a feature's header declares). A compile of the toggled text
  (linked as the full method's, without debug information) decides: it
  compiles, neutral; it fails, relevant, as the full method's compile fails.
- ``COMPILE``: anything else, as the full method does. Headers taken away
  or read later (``#ifdef UWSGI_UUID / #include <uuid/uuid.h>``) are among
  it: what stays may compile and yet mean less (a redeclaration loses the
  bound or the alignment the header gave it, a header read later lands under
  a #pragma pack, an attribute only code generation reads goes).

Text from other files (system headers) is compared whole, blank lines aside,
and so is the order of files entered with their flags (a system header's
warnings are off: with -Werror that decides whether a text compiles); only
uwsgi.h's own text is split into declarations.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterable, Sequence

NEUTRAL, RELEVANT, CHECK, COMPILE = "neutral", "relevant", "check", "compile"

MARKER = re.compile(r'^# \d+ ("(?:[^"\\]|\\.)*")(.*)\n?', re.M)
TOKEN = re.compile(r"""\0\d+|[A-Za-z_$][\w$]*|\.?\d(?:[eEpP][+-]|[\w.])*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'"""
                   r"""|^[ \t]*#.*$|<<=|>>=|\.\.\.|->|\+\+|--|<<|>>|[<>=!&|^+\-*/%]=|&&|\|\||##|<:|:>|<%|%>|%:|\S""", re.M)
BLANK_LINES = re.compile(r"\n\s*\n")
DIGRAPHS = {"<:": "[", ":>": "]", "<%": "{", "%>": "}", "%:": "#"}
UNREADABLE = {"-C", "-CC", "-fdirectives-only", "-fpreprocessed", "-traditional", "-traditional-cpp", "-M", "-MM",
              "-dM"}
RAW_STRING = re.compile(r'(?:\b(?:u8|[LuU])?R)"')  # gcc's raw strings: the tokens above do not read them
# Keywords followed by a parenthesized group that is no declarator.
GROUPS = {"__attribute__", "__attribute", "__typeof__", "__typeof", "typeof", "_Alignas", "__asm__", "__asm", "asm",
          "__declspec", "_Atomic", "_Static_assert", "__extension__"}
TYPE_GROUPS = {"__typeof__", "__typeof", "typeof", "_Atomic"}
TYPE_KEYWORDS = set("""void char short int long float double signed unsigned _Bool _Complex __int128 struct union enum
__signed__ __signed _Float128 __float128 _Float32 _Float64 _Float16 _Decimal32 _Decimal64 _Decimal128""".split())
KEYWORDS = TYPE_KEYWORDS | GROUPS | set("""auto const extern inline register restrict static typedef volatile
_Thread_local __thread __const __restrict __restrict__ __volatile__ __volatile __inline __inline__ _Noreturn
sizeof _Alignof __alignof__ _Generic __label__ __auto_type""".split())


@dataclasses.dataclass
class Text:
    """A preprocessed text: uwsgi.h's declarations, and the other files' text."""

    units: list[tuple[str, ...]]  # uwsgi.h's file-scope declarations; ("\\0N",): the N-th run of other files
    others: list[str]  # each run of other files' lines, blank lines left out
    files: list[str]  # each file entered or returned to, with its flags (3: a system header, warnings off)
    own: str  # uwsgi.h's text
    sure: bool  # False: a form the tokens above do not read (a raw string): no rule applies

    @functools.cached_property
    def unit_set(self) -> set[tuple[str, ...]]:
        return set(self.units)


def readable(flags: list[str]) -> bool:
    """Whether gcc -E's output with ``flags`` is plain C text, which these rules read:
    not with comments kept (-C), macros unexpanded (-fdirectives-only) and the like."""
    return not any(flag.removeprefix("-Wp,") in UNREADABLE or flag == "-Xpreprocessor" for flag in flags)


def split(text: bytes) -> Text:
    """``text`` (gcc -E output with line markers) as uwsgi.h's declarations and the rest."""
    source = text.decode("latin-1")
    own: list[str] = []  # uwsgi.h's text, with "\0N" for the N-th run of other files
    others: list[str] = []
    pending: list[str] = []
    files: list[str] = []
    position, in_uwsgi_h = 0, False
    for match in [*MARKER.finditer(source), None]:
        piece = source[position:match.start() if match else len(source)]
        if not in_uwsgi_h:
            pending.append(piece)
        elif not piece.isspace() and piece:
            if pending and not "".join(pending).isspace():
                others.append(BLANK_LINES.sub("\n", "".join(pending)).strip())
                own.append(f"\n\0{len(others) - 1}\n")
            pending = []
            own.append(piece)
        if match:
            position = match.end()
            file = f"{match.group(1)} {' 3' in match.group(2)}"
            if not files or files[-1] != file:
                files.append(file)
            in_uwsgi_h = os.path.basename(match.group(1)[1:-1]) == "uwsgi.h"
    if pending and not "".join(pending).isspace():
        others.append(BLANK_LINES.sub("\n", "".join(pending)).strip())
        own.append(f"\n\0{len(others) - 1}\n")
    own_text = "".join(own)
    tokens = [DIGRAPHS.get(token, token) for token in TOKEN.findall(own_text)]
    return Text(_units(tokens), others, files, own_text, 'R"' not in own_text or RAW_STRING.search(own_text) is None)


def _units(tokens: list[str]) -> list[tuple[str, ...]]:
    """Split at each file-scope declaration's end: a ``;`` outside any bracket, or the
    ``}`` that ends a function's body. A run of other files, or a #pragma, alone
    between declarations, is a unit of its own."""
    units: list[tuple[str, ...]] = []
    unit: list[str] = []
    parens = braces = 0
    for token in tokens:
        if not unit and token[0] in "\0#":
            units.append((token,))
            continue
        unit.append(token)
        if token in "([":
            parens += 1
        elif token in ")]":
            parens -= 1
        elif token == "{":
            braces += 1
        elif token == "}":
            braces -= 1
            if braces == 0 and parens == 0 and _function_body(unit):
                units.append(tuple(unit))
                unit = []
        elif token == ";" and braces == 0 and parens == 0:
            units.append(tuple(unit))
            unit = []
    if unit:
        units.append(tuple(unit))
    return units


def _function_body(unit: list[str]) -> bool:
    """Whether the unit's first ``{`` opens a function's body: it follows the ``)`` of a
    parameter list, not of an __attribute__ group."""
    brace = unit.index("{")
    if brace == 0 or unit[brace - 1] != ")":
        return False
    opening = _opening(unit, brace - 1)
    return opening > 0 and unit[opening - 1] not in GROUPS


def _closing(tokens: Sequence[str], opening: int, pair: str = "()") -> int:
    """The index of the ``pair[1]`` that closes the ``pair[0]`` at ``opening``; -1 when none does."""
    depth = 0
    for index in range(opening, len(tokens)):
        depth += tokens[index] == pair[0]
        depth -= tokens[index] == pair[1]
        if depth == 0:
            return index
    return -1


def _opening(tokens: Sequence[str], close: int) -> int:
    depth = 0
    for index in range(close, -1, -1):
        depth += tokens[index] == ")"
        depth -= tokens[index] == "("
        if depth == 0:
            return index
    return -1


def _skip_groups(tokens: Sequence[str]) -> tuple[list[str], bool]:
    """``tokens`` without the keyword groups (``__attribute__((...))``, ``typeof(...)``);
    and whether a typeof-like group gave the type."""
    kept: list[str] = []
    typed = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in GROUPS and index + 1 < len(tokens) and tokens[index + 1] == "(":
            typed |= token in TYPE_GROUPS
            closing = _closing(tokens, index + 1)
            index = closing if closing >= 0 else len(tokens) - 1  # unclosed: the group runs to the end
        elif token != "__extension__":
            kept.append(token)
        index += 1
    return kept, typed


def _declarator_name(tokens: list[str]) -> str | None:
    for token in tokens:
        if token[0].isalpha() or token[0] in "_$":
            if token not in KEYWORDS:
                return token
        elif token not in ("*", "(", ")"):
            return None
    return None


def member_names(body: Sequence[str]) -> list[str] | None:
    """The member names of a struct or union body, in order, as DWARF lists them
    ("" for an anonymous struct or union; none for an unnamed bit-field);
    None for any form this does not read with certainty."""
    names: list[str] = []
    for declaration in _split(body, ";"):
        if not declaration:
            continue
        if any(token[0] in "\0#" for token in declaration):
            return None
        tokens, typed = _skip_groups(declaration)
        if "{" in tokens:  # a nested struct, union or enum: its declarators follow the body
            opening = tokens.index("{")
            closing = _closing(tokens, opening, "{}")
            if closing < 0 or opening == 0:
                return None
            declarators = tokens[closing + 1:]
            if not declarators:
                if tokens[opening - 1] in ("struct", "union"):
                    names.append("")  # anonymous: a member without a name
                elif tokens[0] != "enum":
                    return None  # a tagged struct without a declarator: -fms-extensions would make it a member
                continue
            pieces = _split(declarators, ",")
        else:
            pieces = _split(tokens, ",")
            pieces[0], found = _without_specifiers(pieces[0], typed)
            if not found:
                return None
        for piece in pieces:
            name = _declarator_name(piece[:piece.index(":")] if ":" in piece else piece)
            if name is None and ":" not in piece:
                return None
            if name is not None:
                names.append(name)
    return names


def _without_specifiers(tokens: list[str], typed: bool) -> tuple[list[str], bool]:
    """The first declarator of a declaration: past its keywords, ``struct TAG`` and at
    most one typedef name (when no keyword gave the type); and whether a type was found."""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in ("struct", "union", "enum"):
            typed = True
            index += 1  # the tag
        elif token in TYPE_KEYWORDS:
            typed = True
        elif token not in KEYWORDS:
            if typed or not (token[0].isalpha() or token[0] in "_$"):
                break
            typed = True  # a typedef name
        index += 1
    return tokens[index:], typed


def _split(tokens: Sequence[str], separator: str) -> list[list[str]]:
    pieces: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        if token in "({[":
            depth += 1
        elif token in ")}]":
            depth -= 1
        if token == separator and depth == 0:
            pieces.append([])
        else:
            pieces[-1].append(token)
    return pieces


def structs(units: Iterable[tuple[str, ...]]) -> dict[str, list[str] | None]:
    """``{"struct uwsgi_server": [member names] or None}`` for each struct and union
    with a tag that ``units`` define at file scope (the first definition of each)."""
    found: dict[str, list[str] | None] = {}
    for unit in units:
        key = _struct_key(unit)
        if key and key not in found:
            opening = unit.index("{")
            found[key] = member_names(unit[opening + 1:_closing(unit, opening, "{}")])
    return found


def _struct_key(unit: tuple[str, ...]) -> str | None:
    """"struct TAG" when ``unit`` defines a struct or union with a tag (its first ``{`` opens its body)."""
    if "{" not in unit or _function_body(list(unit)):
        return None
    opening = unit.index("{")
    head, _ = _skip_groups(unit[:opening])
    if len(head) >= 2 and head[-2] in ("struct", "union") and head[-1] not in KEYWORDS \
            and _closing(unit, opening, "{}") > 0:
        return f"{head[-2]} {head[-1]}"
    return None


def prototype(unit: tuple[str, ...]) -> tuple[str, bool] | None:
    """A function prototype's name, and whether its return type names a tag; None
    for any other declaration."""
    if unit[-1] != ";" or {"{", "}", "typedef", "="} & set(unit) or unit[0][0] in "\0#":
        return None
    tokens, _ = _skip_groups(unit[:-1])
    if len(tokens) < 3 or tokens[-1] != ")":
        return None
    opening = _opening(tokens, len(tokens) - 1)
    name = tokens[opening - 1] if opening > 0 else ""
    if not (name[:1].isalpha() or name[:1] in "_$") or name in KEYWORDS or "(" in tokens[:opening]:
        return None
    return_type = unit[:unit.index(name)]  # with its groups: __typeof__(struct T *) names a tag too
    return name, bool({"struct", "union", "enum"} & set(return_type))


def same(one: Text, other: Text) -> bool:
    """The same tokens from uwsgi.h, the same text from other files, entered in the same order."""
    return one.units == other.units and one.others == other.others and one.files == other.files


def verdict(base: Text, toggled: Text) -> str:
    """What the two texts prove about the toggle (see the module's doc)."""
    if same(base, toggled):
        return NEUTRAL
    if not (base.sure and toggled.sure):
        return COMPILE
    in_base, in_toggled = base.unit_set, set(toggled.units)
    removed = [unit for unit in base.units if unit not in in_toggled]
    added = [unit for unit in toggled.units if unit not in in_base]
    # A struct whose declaration is in both texts has the same members in both.
    changed = structs(added)
    for key, members in structs(removed).items():
        other = changed.get(key)
        if members is not None and other is not None and members != other:
            return RELEVANT
    if base.others != toggled.others or base.files != toggled.files:
        return COMPILE
    if [unit for unit in base.units if unit in in_toggled] != [unit for unit in toggled.units if unit in in_base]:
        return COMPILE
    others = "\0".join(base.others)
    tags = []
    for unit in removed + added:
        found = prototype(unit)
        if found is None:
            return COMPILE
        name, tag = found
        word = re.compile(rf"\b{re.escape(name)}\b")
        # It appears nowhere but in its own declaration (in a string or another file neither).
        if len(word.findall(base.own)) + len(word.findall(toggled.own)) != 1 or name in others:
            return COMPILE
        tags.append(tag)
    return CHECK if added or any(tags) else NEUTRAL
