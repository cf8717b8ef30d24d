"""Where this wheel's uWSGI plugins are, for the uwsgi that will load them.

Written into every plugin wheel by uwsgi-plugin-backend; standard library
only, so an installed plugin needs nothing else at run time. The backend
computes ABI keys with this same module, so build and run time agree.

    uwsgi --plugins-dir "$(python -m PACKAGE)" --plugin NAME

ABI key: ``a3-<16 hex digits>``, for example ``a3-6f1c0b2a9d3e4f50`` (``a3``
is the key format: a later change of what is hashed gets another prefix).
The digits are the 64-bit FNV-1a hash of a canonical text:

    dot_h=<FNV-1a of `uwsgi --dot-h`, trailing white space removed, 16 hex>
    platform=machine=<ELF machine> class=<32|64>-<le|be> libc=<glibc|musl|none> time_t=<bytes> off_t=<bytes>
    <abi_lines(): sorted -DNAME=VALUE lines, then options, one per line>

`uwsgi --cflags` is read as the shell and gcc read it (read_flags: -D/-U
joined or in two words, inside -Wp, and after -Xpreprocessor, the last one
winning). The backend learns at build time, with the compiler, which macros
and options change the layout of a struct, union, enum or typedef of uwsgi.h
(target_uwsgi/layouts.py), and which of the candidates it tried are neutral; a build's
record carries those lists, and every macro uwsgi.h's compile consulted. A
line counts a macro that changes a layout; a macro found neutral but defined
with another value (another string literal is the same); a consulted macro
the build never tried; and every option neither known (NEUTRAL_FLAGS) nor
found to be neutral. Macros that only add or remove declarations
(UWSGI_XML, UWSGI_JSON ...) do not count: a plugin using a function the
loading uwsgi lacks fails cleanly at dlopen(), and the backend checks symbols
at build time. The version string does not count either: two releases with
the same uwsgi.h and the same layouts are the same ABI to a plugin.

The module is in numbered parts (``# ---- N. ...``); ``__all__`` lists
RUNTIME_API, what a plugin wheel offers, and BACKEND_API, what the backend
imports through its runtime_api.py.

At run time (no compiler) a build fits a uwsgi binary when the binary's
uwsgi.h hash and ELF platform (machine, class, libc family from PT_INTERP;
for a script such as pyuwsgi's `uwsgi`, its interpreter's) equal the
record's, and its CFLAGS read with the record's lists give the record's
lines. Each plugin ships as a loader (guard/plugin_loader.c) that computes
the same text in C from uwsgi_get_dot_h() and uwsgi_get_cflags() before it
opens the real plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from stat import S_ISVTX

# What a plugin wheel offers its users: the entry point and `python -m PACKAGE`.
RUNTIME_API = ["plugin_dir", "main", "NoMatchingBuild"]
# What uwsgi-plugin-backend imports, through uwsgi_plugin_backend/runtime_api.py alone.
BACKEND_API = [
    "BUILDS_DIR",
    "CACHE_ENV",
    "EDITABLE_POINTER",
    "ENV_VAR",
    "KEY_FORMAT",
    "NOTABLE_FEATURES",
    "CannotAsk",
    "abi_fits",
    "abi_lines",
    "abi_summary",
    "ask",
    "ask_for_pyuwsgi",
    "binary_abi",
    "binary_identity",
    "cache_dir_named",
    "dot_h_hash",
    "elf_interpreter",
    "fallback_builds_dir",
    "find_default_uwsgi",
    "flag_text",
    "fnv1a64",
    "hash_of_parts",
    "libc_family",
    "neutral_flag",
    "platform_of",
    "process_elf",
    "read_flags",
    "reserved_macro",
    "record_fits",
    "script_interpreter",
    "shell_words",
    "tested_macros",
    "trusted_uwsgi",
    "uwsgi_env",
]
__all__ = RUNTIME_API + BACKEND_API

BUILDS_DIR = Path(__file__).with_name("uwsgi_builds")
# An editable install (pip install -e) keeps its builds where the backend rebuilds them.
EDITABLE_POINTER = Path(__file__).with_name("_editable.json")
ENV_VAR = "UWSGI_PLUGIN_BACKEND_UWSGI"
CACHE_ENV = "UWSGI_PLUGIN_BACKEND_CACHE_DIR"
KEY_FORMAT = "a3"
CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif)\b(.*)$")
DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Shown in the human summary as +name or -name.
NOTABLE_FEATURES = ("ssl", "pcre", "pcre2", "routing", "xml", "yaml", "json", "zlib", "uuid", "cap", "as_shared_library")
ELF_MACHINES = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64", 183: "aarch64",
                243: "riscv", 258: "loongarch"}


# ---- 1. The ABI key, computed alike at build and run time and by the load-time guard ----


class NoMatchingBuild(LookupError):
    """This wheel holds no build of its plugins for the given uwsgi."""


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def tested_macros(dot_h: bytes) -> set[str]:
    """Every identifier uwsgi.h tests in a preprocessor conditional: the macros
    the backend tries adding when it learns which ones change a layout.

    ``#ifndef X`` followed by ``#define X`` only gives X a default (as uwsgi.h
    does for the embedded plugin lists); that is not a test.
    """
    lines = dot_h.decode("latin-1").replace("\\\n", " ").splitlines()
    names: set[str] = set()
    for line, following in zip(lines, [*lines[1:], ""]):
        match = CONDITIONAL.match(line)
        if match is None:
            continue
        kind, condition = match.groups()
        default = DEFINE.match(following)
        if kind == "ifndef" and default and default.group(1) == condition.strip():
            continue
        names.update(IDENTIFIER.findall(condition))
    names.discard("defined")
    return names


# --cflags is text for a shell (uwsgiconfig.py puts it on one): shell_words()
# reads it as the shell hands it to gcc, and read_flags() as gcc reads it.
# Options whose argument may be the next word: gcc's, and inside -Wp, those of
# its preprocessor (where -MD and -MMD name a file). guard/abi_key.h keeps the
# same lists.
ARGUMENT_FLAGS = frozenset({"-D", "-U", "-I", "-isystem", "-idirafter", "-iquote", "-include", "-imacros", "-isysroot",
                            "--sysroot", "-MF", "-MT", "-MQ", "-x", "-Xpreprocessor", "-Xlinker", "-Xassembler", "-L",
                            "-l", "-o", "-T", "-u", "-z", "-e", "-A", "-B", "-iprefix", "-iwithprefix",
                            "-iwithprefixbefore", "-aux-info", "-dumpbase", "-dumpbase-ext", "-dumpdir", "--param",
                            "-imultilib", "-imultiarch", "-iplugindir", "-wrapper", "-specs"})
PREPROCESSOR_ARGUMENT_FLAGS = frozenset({"-D", "-U", "-I", "-isystem", "-idirafter", "-iquote", "-include", "-imacros",
                                         "-isysroot", "-MF", "-MT", "-MQ", "-MD", "-MMD", "-o", "-A", "-iprefix",
                                         "-iwithprefix", "-iwithprefixbefore", "-imultilib", "-imultiarch", "-dumpbase",
                                         "-dumpbase-ext", "-dumpdir", "-aux-info", "--param", "-auxbase",
                                         "-auxbase-strip"})
# Options known to leave every layout alone: optimisation, warnings, debug
# information, code generation that keeps the data model, include and library
# paths, dependency files. Every other option counts.
NEUTRAL_FLAGS = frozenset({
    "-pipe", "-pthread", "-w", "-fPIC", "-fpic", "-fPIE", "-fpie", "-fno-pic", "-fno-pie", "-fno-PIC", "-fno-PIE",
    "-fexceptions", "-fno-exceptions", "-fasynchronous-unwind-tables", "-fno-asynchronous-unwind-tables",
    "-funwind-tables", "-fno-strict-aliasing", "-fstrict-aliasing", "-fwrapv", "-fno-strict-overflow", "-fno-common",
    "-fcommon", "-fno-plt", "-ffunction-sections", "-fdata-sections", "-fno-semantic-interposition",
    "-fno-delete-null-pointer-checks", "-fomit-frame-pointer", "-fno-omit-frame-pointer", "-fstack-clash-protection",
    "-fno-stack-clash-protection", "-fno-stack-protector", "-frecord-gcc-switches", "-fno-ident", "-fhardened",
})
NEUTRAL_PREFIXES = ("-O", "-g", "-W", "-I", "-isystem", "-idirafter", "-iquote", "-isysroot", "--sysroot", "-L", "-l",
                    "-MD", "-MMD", "-MF", "-MT", "-MQ", "-MP", "-fstack-protector", "-fcf-protection",
                    "-ffile-prefix-map=", "-fdebug-prefix-map=", "-fmacro-prefix-map=", "-fdiagnostics-", "-flto",
                    "-fno-lto", "-fprofile-", "-fsanitize", "-fno-sanitize", "-fvisibility", "-fzero-call-used-regs",
                    "-mtune=")


def shell_words(text: str) -> list[str]:
    """The words a POSIX shell makes of ``text``: white space splits, \\ escapes
    a character, '...' is literal, and in "..." a backslash escapes only
    $ ` " \\ and a newline. No expansion: uwsgi's --cflags has none."""
    words: list[str] = []
    word: list[str] | None = None
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in " \t\n":  # the shell's blanks; \v \f \r are word characters to it
            if word is not None:
                words.append("".join(word))
                word = None
            index += 1
            continue
        word = [] if word is None else word
        if char == "\\" and index + 1 < length:
            if text[index + 1] != "\n":  # a backslash-newline joins lines
                word.append(text[index + 1])
            index += 2
        elif char == "'":
            close = text.find("'", index + 1)
            close = length if close < 0 else close
            word.append(text[index + 1:close])
            index = close + 1
        elif char == '"':
            index += 1
            while index < length and text[index] != '"':
                if text[index] == "\\" and index + 1 < length and text[index + 1] in '$`"\\\n':
                    if text[index + 1] != "\n":
                        word.append(text[index + 1])
                    index += 2
                else:
                    word.append(text[index])
                    index += 1
            index += 1
        else:
            word.append(char)
            index += 1
    if word is not None:
        words.append("".join(word))
    return words


Flag = tuple[str, str, "str | None"]  # (prefix: "" or "-Wp," or "-Xpreprocessor ", option, its next-word argument)
# A macro's state on the command line: its value, or None when a -U undid it
# (a built-in such as __linux__ included); a macro not named keeps its default.
Defines = dict[str, "str | None"]


def flag_text(flag: Flag) -> str:
    prefix, option, argument = flag
    return prefix + option + ("" if argument is None else " " + argument)


def _read_words(words: list[str], defines: Defines, flags: list[Flag], prefix: str) -> list[tuple[list[str], str]]:
    """Read ``words`` into ``defines`` and ``flags``; return the -Wp, and
    -Xpreprocessor words, which gcc's driver hands the preprocessor after
    every plain -D and -U, whatever their place on the command line."""
    later: list[tuple[list[str], str]] = []
    index = 0
    while index < len(words):
        word, argument = words[index], None
        if word in (PREPROCESSOR_ARGUMENT_FLAGS if prefix else ARGUMENT_FLAGS) and index + 1 < len(words):
            argument, index = words[index + 1], index + 2
        else:
            index += 1
        kind, text = (word[1], argument) if argument is not None and word in ("-D", "-U") else (word[1:2], word[2:])
        name = text.split("=", 1)[0].split("(", 1)[0] if kind in ("D", "U") and word[:2] in ("-D", "-U") else ""
        if not C_IDENTIFIER.fullmatch(name):  # gcc makes odd macros of odd names: such a word counts as an option
            name = ""
        if name and kind == "D":
            defines.pop(name, None)
            defines[name] = text.split("=", 1)[1] if "=" in text else "1"
        elif name and kind == "U":
            defines.pop(name, None)
            defines[name] = None
        elif not prefix and word.startswith("-Wp,"):
            later.append((word[4:].split(","), "-Wp,"))
        elif not prefix and word == "-Xpreprocessor" and argument is not None:
            later.append(([argument], "-Xpreprocessor "))
        else:
            flags.append((prefix, word, argument))
    return later


def read_flags(cflags: str) -> tuple[Defines, list[Flag]]:
    """What gcc makes of ``cflags``: the macros it defines, with their values
    (``-DX`` is X=1; ``-D X``, ``-Wp,-DX`` and ``-Xpreprocessor -DX`` alike;
    None for one a -U undid; a later -D or -U wins, and -Wp, and -Xpreprocessor
    ones come after all others, as gcc's driver passes them), and every other
    option in order."""
    defines: Defines = {}
    flags: list[Flag] = []
    for words, prefix in _read_words(shell_words(cflags), defines, flags, ""):
        _read_words(words, defines, flags, prefix)
    return defines, flags


def neutral_flag(flag: Flag) -> bool:
    """An option known to change no layout (NEUTRAL_FLAGS); ``-Wp,`` options only as dependency files."""
    text = flag[1] + ("" if flag[2] is None else " " + flag[2])
    return text in NEUTRAL_FLAGS or (text.startswith(NEUTRAL_PREFIXES) and not text.startswith("-Wp,"))


def reserved_macro(name: str) -> bool:
    """A name of the compiler's or the C library's (__linux__, _GNU_SOURCE): never
    taken as neutral, since one alone may change nothing where two together do."""
    return name.startswith("__") or (len(name) > 1 and name[0] == "_" and name[1].isupper())


def _string_literal(value: str | None) -> bool:
    return value is not None and len(value) >= 2 and value[0] == value[-1] == '"'


def _compatible(value: str | None, built_with: str | None) -> bool:
    """A macro the build found neutral, as the loading binary has it: undefined
    (the build tried that), the value the build tried, or another string literal
    (a string cannot steer #if, and a type using it would not have compiled without it)."""
    return (value is None or value == built_with or (built_with is None and value == "1")
            or (_string_literal(value) and _string_literal(built_with)))


def abi_lines(cflags: str, learned: dict) -> list[str]:
    """What of ``cflags`` counts for a build that learned ``learned``: sorted
    ``-DNAME=VALUE`` (``-UNAME`` for one undone) lines for the macros that
    change a layout, for macros the build found neutral but are defined
    otherwise, and for macros uwsgi.h's compile consults that the build never
    tried; then, in order, each option not known to be neutral."""
    defines, flags = read_flags(cflags)
    layout, neutral, consulted = set(learned["layout_macros"]), learned["neutral_macros"], set(learned["consulted"])
    lines = sorted(  # by their bytes, as the guard's strcmp sorts them
        (f"-U{name}" if value is None else f"-D{name}={value}" for name, value in defines.items()
         if name in layout or (not _compatible(value, neutral[name]) if name in neutral else name in consulted)),
        key=lambda line: line.encode(errors="surrogateescape"),
    )
    return lines + [flag_text(flag) for flag in flags if not neutral_flag(flag)]


def dot_h_hash(dot_h: bytes) -> str:
    return f"{fnv1a64(dot_h.rstrip()):016x}"


def canonical_text(dot_h_hash: str, platform: str, lines: list[str]) -> bytes:
    """The hashed text; bytes a binary's CFLAGS hold that are no UTF-8 come back as
    they were (read with surrogateescape), as the guard hashes them."""
    return "".join(line + "\n" for line in [f"dot_h={dot_h_hash}", f"platform={platform}", *lines]).encode(errors="surrogateescape")


def hash_of_parts(dot_h_hash: str, platform: str, lines: list[str]) -> str:
    """The ABI hash from uwsgi.h's hash, the platform line and the abi_lines()."""
    return f"{fnv1a64(canonical_text(dot_h_hash, platform, lines)):016x}"


def abi_summary(version: str, cflags: str) -> str:
    """``uWSGI 2.0.31 +ssl +xml -pcre ...``: version and notable features, for
    people (the same text the load-time guard prints); not part of the key."""
    defined = read_flags(cflags)[0]
    present = [defined.get(f"UWSGI_{name.upper()}") is not None for name in NOTABLE_FEATURES]
    plus = [f"+{name}" for name, here in zip(NOTABLE_FEATURES, present) if here]
    minus = [f"-{name}" for name, here in zip(NOTABLE_FEATURES, present) if not here]
    return " ".join([f"uWSGI {version}", *plus, *minus])


# ---- 2. The platform of a uwsgi: ELF machine, word size and C library ----


def elf_interpreter(path: str | Path) -> tuple[str, bytes]:
    """``("machine=x86_64 class=64-le", PT_INTERP)`` of an ELF file, read from
    its header and program headers (PT_INTERP is empty for a library)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or len(head) < 52:
            raise ValueError(f"{path} is not an ELF file")
        bits, order = (64 if head[4] == 2 else 32), ("<" if head[5] == 1 else ">")
        machine = struct.unpack_from(order + "H", head, 18)[0]
        if bits == 64:
            phoff, (phentsize, phnum) = struct.unpack_from(order + "Q", head, 32)[0], struct.unpack_from(order + "HH", head, 54)
        else:
            phoff, (phentsize, phnum) = struct.unpack_from(order + "I", head, 28)[0], struct.unpack_from(order + "HH", head, 42)
        interpreter = b""
        for index in range(phnum):
            f.seek(phoff + index * phentsize)
            entry = f.read(phentsize)
            if struct.unpack_from(order + "I", entry, 0)[0] != 3:  # PT_INTERP
                continue
            # p_offset and p_filesz
            offset, size = (struct.unpack_from(order + "QQQQ", entry, 8)[::3] if bits == 64
                            else struct.unpack_from(order + "IIII", entry, 4)[::3])
            f.seek(offset)
            interpreter = f.read(size).rstrip(b"\0")
    name = ELF_MACHINES.get(machine, f"em{machine}")
    return f"machine={name} class={bits}-{'le' if order == '<' else 'be'}", interpreter


def libc_family(interpreter: bytes) -> str:
    """ld-musl-*: musl; another program interpreter: glibc; none: none."""
    return "musl" if b"ld-musl" in interpreter else "glibc" if interpreter else "none"


def elf_platform(path: str | Path) -> str:
    """``machine=x86_64 class=64-le libc=glibc`` of an ELF file."""
    machine, interpreter = elf_interpreter(path)
    return f"{machine} libc={libc_family(interpreter)}"


def process_elf(uwsgi: str) -> str:
    """The ELF file whose C library loads the plugins: the uwsgi binary, or for
    a script (pyuwsgi's console script) the interpreter it runs under."""
    path = os.path.realpath(shutil.which(uwsgi) or uwsgi)
    command = script_interpreter(Path(path))
    if command and os.path.basename(command[0]) == "env" and len(command) > 1:
        command = command[1:]
    return os.path.realpath(shutil.which(command[0]) or command[0]) if command else path


def platform_of(uwsgi: str) -> str:
    """The ELF platform of the process a uwsgi binary or script runs as."""
    try:
        return elf_platform(process_elf(uwsgi))
    except (OSError, ValueError, struct.error) as error:
        raise NoMatchingBuild(f"cannot read the platform of {uwsgi}: {error}") from None


def abi_fits(record: dict, binary: dict) -> bool:
    """Is the build ``record`` for the ABI of the uwsgi described by ``binary``
    (its ``dot_h_hash``, ``platform`` and ``cflags``, from binary_abi())?  The
    same uwsgi.h, the same ELF platform, and the same tokens of the macros that
    build found to change layouts."""
    return (
        record.get("dot_h_hash") == binary["dot_h_hash"]
        and record.get("platform", "").startswith(binary["platform"] + " ")
        and record.get("abi_lines") is not None
        and abi_lines(binary["cflags"], record) == record["abi_lines"]
    )


def machine_glibc() -> str | None:
    """The version of the glibc this machine runs (``2.36``); None off glibc."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # not a name this C library knows (musl)
        return None
    return text.split()[-1] if text and text.startswith("glibc ") else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def unmet_need(record: dict, binary: dict) -> str | None:
    """Why the build ``record`` cannot serve the uwsgi ``binary`` on this machine
    whatever its ABI: it needs a newer glibc than the machine's (its ELF names
    GLIBC_x.y versions the dynamic loader would refuse), or it calls the Python
    C API of another CPython than that uwsgi's pyuwsgi. None when it can."""
    glibc, here = record.get("glibc"), machine_glibc()
    if isinstance(glibc, str) and here is not None and _version(glibc) > _version(here):
        return f"it needs glibc {glibc}, and this machine has glibc {here}"
    python = record.get("python")
    if python and python != binary.get("python"):
        return (f"its plugins call the Python C API of {python}, and that uwsgi's pyuwsgi runs under "
                f"{binary.get('python') or 'another Python'}")
    return None


def record_fits(record: dict, binary: dict) -> bool:
    """Does the build ``record`` serve the uwsgi described by ``binary`` here: its
    ABI (abi_fits), and nothing it needs that this machine or pyuwsgi lacks (unmet_need)?"""
    return abi_fits(record, binary) and unmet_need(record, binary) is None


# ---- 3. Asking a uwsgi binary, and knowing it again ----


# Variables that steer a Python interpreter. A frontend's build environment
# sets some (pip: PYTHONPATH, PYTHONNOUSERSITE); a uwsgi that is a Python
# script (pyuwsgi's console script, a wrapper) run with them cannot import itself.
PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONSTARTUP",
              "PYTHONEXECUTABLE", "PYTHONPLATLIBDIR", "PYTHONINSPECT", "PYTHONDEVMODE", "PYTHONWARNINGS",
              "__PYVENV_LAUNCHER__")


def uwsgi_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment to run a uwsgi in: no UWSGI_* (uwsgi reads them as
    options) and none of the variables with which a frontend steers the
    build's Python. PYTHONUSERBASE stays: it is the user's, and says where a
    ``pip install --user`` put pyuwsgi."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.startswith("UWSGI_") and k not in PYTHON_ENV}


class CannotAsk(NoMatchingBuild):
    """A uwsgi binary did not answer a question about its build."""


def ask(uwsgi: str, flag: str, timeout: float = 60) -> bytes:
    """What ``uwsgi flag`` prints (``--version``, ``--cflags``, ``--dot-h``, ``--config-py``)."""
    try:
        result = subprocess.run([uwsgi, flag], capture_output=True, env=uwsgi_env(), timeout=timeout,
                                stdin=subprocess.DEVNULL, check=False)
    except OSError as error:
        raise CannotAsk(f"cannot run {uwsgi} {flag}: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise CannotAsk(f"{uwsgi} {flag} did not answer within {timeout:g} s; is it really a uwsgi binary?") from None
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise CannotAsk(f"{uwsgi} {flag} failed with exit status {result.returncode}: {stderr or 'no output'}")
    return result.stdout


# What pip writes instead of a shebang when the interpreter's path has spaces or is long:
#   #!/bin/sh
#   '''exec' "/path with spaces/bin/python" "$0" "$@"
SH_EXEC = re.compile(r"^'''exec' (.+?) \"\$0\" \"\$@\"")
FIND_PYUWSGI = "import importlib.util as u; s = u.find_spec('pyuwsgi'); print(s.origin if s else '')"


def script_interpreter(script: Path) -> list[str] | None:
    """The interpreter a console script runs under, or None for a binary."""
    with script.open("rb") as f:
        first = f.readline(4096).decode(errors="replace").strip()
        second = f.readline(4096).decode(errors="replace").strip()
    if not first.startswith("#!"):
        return None
    match = SH_EXEC.match(second)
    if first == "#!/bin/sh" and match:
        return shlex.split(match.group(1))
    return shlex.split(first[2:]) or None


def ask_for_pyuwsgi(interpreter: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Ask ``interpreter`` where it imports pyuwsgi from: the module's path on
    stdout, nothing when it has none (raises OSError, TimeoutExpired)."""
    return subprocess.run([*interpreter, "-c", FIND_PYUWSGI], capture_output=True, text=True, timeout=timeout,
                          env=uwsgi_env(), stdin=subprocess.DEVNULL, check=False)


def _pyuwsgi_module(script: Path, text: bytes, timeout: float) -> str | None:
    """The pyuwsgi extension module a pyuwsgi console script runs, found by its
    interpreter without starting uWSGI (tens of ms instead of hundreds)."""
    interpreter = script_interpreter(script) if b"pyuwsgi" in text else None
    if not interpreter:
        return None
    try:
        result = ask_for_pyuwsgi(interpreter, timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    origin = result.stdout.strip()
    return origin if result.returncode == 0 and os.path.isfile(origin) else None


def binary_identity(uwsgi: str, timeout: float = 60) -> str:
    """What the binary is, cheaply: the SHA-256 of a compiled binary's bytes
    (a few ms), so a replaced binary with equal size and mtime is new. A script
    runs something that can change behind it: pyuwsgi's console script is
    identified with the bytes of the pyuwsgi module its interpreter imports,
    any other script (a wrapper) by its answers to --version, --cflags and
    --dot-h (repointed at another binary, it may answer the first two alike)."""
    path = os.path.realpath(shutil.which(uwsgi) or uwsgi)
    digest = hashlib.sha256()

    def add_file(name: str) -> bytes:
        with open(name, "rb") as f:
            data = f.read()
        digest.update(len(data).to_bytes(8, "little") + data)
        return data

    try:
        data = add_file(path)
        if data[:2] == b"#!":
            module = _pyuwsgi_module(Path(path), data, timeout)
            if module:
                digest.update(module.encode() + b"\0")
                add_file(module)
            else:
                for flag in ("--version", "--cflags", "--dot-h"):
                    answer = ask(path, flag, timeout)
                    digest.update(len(answer).to_bytes(8, "little") + answer)
    except OSError as error:
        raise CannotAsk(f"cannot read {uwsgi}: {error.strerror}") from None
    return digest.hexdigest()[:32]


# ---- 4. The cache, used only where no other user can change it ----


def cache_dir() -> Path:
    """The cache as $UWSGI_PLUGIN_BACKEND_CACHE_DIR names it (cache_dir_named)."""
    return cache_dir_named(os.environ.get(CACHE_ENV))


def cache_dir_named(explicit: str | None) -> Path:
    """The backend's cache, always an absolute path (a relative one would land in
    whatever directory a build runs in, the project's own): ``explicit``, the
    value of $UWSGI_PLUGIN_BACKEND_CACHE_DIR (relative: refused), else $XDG_CACHE_HOME
    (relative: ignored, as the XDG spec says), else ~/.cache, else, with no
    usable home, a directory of this user's in the temporary directory. A cache
    the user did not name is made (0700) and must be one no other user can
    change (trusted_directory): it holds kits whose uwsgiconfig.py every build runs.
    Refusal is a NotADirectoryError: the runtime then works uncached, the backend stops."""
    if explicit:
        if not os.path.isabs(explicit):
            raise NotADirectoryError(
                f"${CACHE_ENV}={explicit!r} is a relative path; set an absolute one "
                f"(for example {os.path.abspath(explicit)!r})"
            )
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "")
    name = "uwsgi-plugin-backend"
    if not os.path.isabs(base):
        home = os.path.expanduser("~")  # stays "~" with HOME unset and no passwd entry
        if os.path.isabs(home):
            base = os.path.join(home, ".cache")
        else:
            base, name = tempfile.gettempdir(), f"uwsgi-plugin-backend-{os.getuid()}"
    path = Path(base) / name
    try:  # made first, so that no one else can make it between the check and its use
        os.makedirs(path, 0o700, exist_ok=True)
    except OSError:  # not to be made (a read-only home): the check below still applies
        pass
    return trusted_directory(path, "the cache directory",
                             f"set {CACHE_ENV} to a directory of your own (or remove it, when it is yours to remove)")


def _own_group(gid: int) -> bool:
    """Whether group ``gid`` is this user's alone (a user private group, as with umask 002 on Fedora)."""
    import grp
    import pwd

    try:
        user, group = pwd.getpwuid(os.getuid()), grp.getgrgid(gid)
    except KeyError:
        return False
    return gid == user.pw_gid and group.gr_name == user.pw_name and not group.gr_mem


def trusted_directory(path: Path, what: str, fix: str) -> Path:
    """``path`` as its resolved parent and its own name, refused (NotADirectoryError)
    unless no other user can change what it holds: it (or the link it is) and
    every directory above it and above where it leads are this user's or
    root's and writable by no one else, but for root's sticky ones such as /tmp,
    where no one can replace another's entries. A part not there yet must be
    one that only this user can make. Used by its resolved path, it cannot be
    swapped after the check."""
    uid = os.getuid()

    def refused(problem: str) -> NotADirectoryError:
        return NotADirectoryError(f"{what} {path} could be changed by another user, who could make this uid run "
                                  f"their code: {problem}; {fix}")

    existing, missing = path, list[str]()  # the deepest part of path that is there, and the names below it
    while not os.path.lexists(existing) and existing.parent != existing:
        existing, missing = existing.parent, [existing.name, *missing]
    try:
        real, parent = existing.resolve(strict=True), existing.parent.resolve(strict=True)
        owner = os.lstat(existing).st_uid
        chain = sorted({real, *real.parents, parent, *parent.parents}, key=lambda d: len(d.parts))
        statuses = [(directory, os.stat(directory)) for directory in chain]
    except (OSError, RuntimeError) as error:  # RuntimeError: a loop of links
        raise NotADirectoryError(f"cannot check {what} {path}: {getattr(error, 'strerror', None) or error}; {fix}") from None
    if owner not in (uid, 0):
        raise refused(f"{existing} belongs to uid {owner}")
    for directory, status in statuses:
        others_write = status.st_mode & 0o002 or (status.st_mode & 0o020 and not _own_group(status.st_gid))
        sticky_root = status.st_uid == 0 and status.st_mode & S_ISVTX
        if status.st_uid not in (uid, 0):
            raise refused(f"{directory} belongs to uid {status.st_uid}")
        if others_write and not (sticky_root and directory != real):
            raise refused(f"{directory} is writable by other users (mode {status.st_mode & 0o7777:04o})")
    if missing and dict(statuses)[real].st_mode & 0o002:  # /tmp: made there by anyone before this user's turn
        raise refused(f"{real / missing[0]} is not there, and anyone may make it in {real}")
    return real.joinpath(*missing) if missing else parent / existing.name


# abi-keys.json: {"format": CACHE_FORMAT, "keys": {identity: entry}}; anything else is ignored and rewritten.
CACHE_FORMAT = 4  # 4: the fields record_fits compares (key format a2), and the pyuwsgi's Python
ENTRY_FIELDS = ("summary", "version", "cflags", "dot_h_hash", "platform", "python")


def _cache_file() -> Path:
    return cache_dir() / "abi-keys.json"


def _read_cache() -> dict[str, dict[str, str]]:
    """The cached keys; a file that is missing, unreadable or not in this format counts as empty."""
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("keys"), dict):
        return {}
    return {identity: entry for identity, entry in data["keys"].items()
            if isinstance(entry, dict) and all(isinstance(entry.get(field), str) for field in ENTRY_FIELDS)}


def _write_cache(cache: dict[str, dict[str, str]]) -> None:
    """Write-then-rename, so a reader never sees half a file; a cache we cannot write is no error."""
    try:
        path = _cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".abi-keys-")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": CACHE_FORMAT, "keys": cache}, f)
        os.replace(tmp, path)
    except OSError:
        pass


def pyuwsgi_python(uwsgi: str, timeout: float = 60) -> str:
    """``cp311`` for a pyuwsgi console script whose Python imports
    pyuwsgi.cpython-311-*.so; empty for a compiled uwsgi."""
    path = Path(os.path.realpath(shutil.which(uwsgi) or uwsgi))
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return ""
    module = _pyuwsgi_module(path, head, timeout) if head[:2] == b"#!" else None
    match = re.search(r"\.cpython-(\d+)", os.path.basename(module or ""))
    return f"cp{match.group(1)}" if match else ""


def binary_abi(uwsgi: str) -> dict[str, str]:
    """``{"summary", "version", "cflags", "dot_h_hash", "platform", "python"}`` of
    a uwsgi binary (what record_fits compares; python: pyuwsgi_python()), cached
    by what the binary is."""
    identity = binary_identity(uwsgi)
    cache = _read_cache()
    if identity in cache:
        return cache[identity]
    version = ask(uwsgi, "--version").decode(errors="replace").strip()
    cflags = ask(uwsgi, "--cflags").decode(errors="surrogateescape")  # every byte kept, as the guard reads it
    dot_h = ask(uwsgi, "--dot-h")
    entry = {
        "version": version,
        "summary": abi_summary(version, cflags),
        "cflags": cflags,
        "dot_h_hash": dot_h_hash(dot_h),
        "platform": platform_of(uwsgi),
        "python": pyuwsgi_python(uwsgi),
    }
    cache[identity] = entry
    _write_cache(cache)
    return entry


# ---- 5. The builds this wheel carries, and those build-missing added ----


def fallback_builds_dir(package_dir: Path = BUILDS_DIR.parent) -> Path:
    """Where ``uwsgi-plugin-backend build-missing`` puts builds when the
    installed package is not writable: the user cache, keyed by this install
    (a reinstall writes a new runtime module, so it starts afresh)."""
    try:
        stat = os.stat(package_dir / "_uwsgi_plugin.py")
        install = f"{package_dir.resolve()}\0{stat.st_ino}\0{stat.st_mtime_ns}"
    except OSError:
        install = str(package_dir)
    return cache_dir() / "missing-builds" / f"{package_dir.name}-{hashlib.sha256(install.encode()).hexdigest()[:16]}"


def editable_builds_dir() -> Path:
    """Where an editable install's builds are: outside the package, so checked as
    the cache is (a directory in /tmp that a cleaner removed, made again by someone else)."""
    return trusted_directory(Path(json.loads(EDITABLE_POINTER.read_text())["builds_dir"]),
                             "this editable install's build directory",
                             "install it again with a build directory of your own: pip install -e PROJECT -C build-dir=DIR")


def builds() -> list[tuple[Path, dict]]:
    """Every build this wheel carries, then those build-missing added: directory and record."""
    directories = [editable_builds_dir() if EDITABLE_POINTER.exists() else BUILDS_DIR]
    try:
        directories.append(fallback_builds_dir())
    except NotADirectoryError:  # a cache refused (not private, relative path): none of its builds is loaded
        pass
    found = []
    for directory in directories:
        found += [(record.parent, json.loads(record.read_text())) for record in sorted(directory.glob("*/build.json"))]
    return found


# ---- 6. The uwsgi the user runs ----


def _is_venv_bin(directory: Path) -> bool:
    return (directory.parent / "pyvenv.cfg").is_file()


def _executable_uwsgi(directory: Path) -> Path | None:
    candidate = directory / "uwsgi"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def trusted_uwsgi(directory: Path, why: str, skipped: list[str]) -> tuple[Path, str] | None:
    """``directory``'s uwsgi as the file it resolves to, and why it was chosen; None
    when there is none, or when another user could change it (trusted_directory),
    and then the reason goes into ``skipped``. A uwsgi found rather than named runs
    with this uid's rights: root's, for a root build under another user's program."""
    candidate = _executable_uwsgi(directory)
    if candidate is None:
        return None
    real = Path(os.path.realpath(candidate))  # what runs: no link to repoint after the check
    try:
        trusted_directory(real, f"the uwsgi {why},",
                          f"not run; to use it all the same, name it (--uwsgi PATH, -C uwsgi=PATH or ${ENV_VAR})")
    except NotADirectoryError as error:
        skipped.append(str(error))
        return None
    return real, why if real == candidate else f"{why}, as {candidate}"


def _ancestor_programs() -> list[tuple[Path, str]]:
    """The programs that started this process, nearest first: argv[0] (made
    absolute against the process's working directory, not resolved, since a
    venv's python is a link) and /proc/PID/exe, with the command line for the log."""
    found: list[tuple[Path, str]] = []
    pid = os.getppid()
    for _ in range(16):  # deep enough for any frontend; init's parent is 0
        if pid <= 1:
            break
        proc = Path("/proc") / str(pid)
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        command = " ".join(os.fsdecode(part) for part in argv if part)
        if argv and os.sep.encode() in argv[0]:
            try:
                found.append((Path(os.path.join(os.readlink(proc / "cwd"), os.fsdecode(argv[0]))), command))
            except OSError:
                pass
        try:
            found.append((Path(os.readlink(proc / "exe")), command))
        except OSError:
            pass
        pid = ppid
    return found


def uwsgi_beside_interpreter(skipped: list[str] | None = None) -> tuple[Path, str] | None:
    """The uwsgi installed with the Python the user runs, and why it was chosen.

    In order: a virtual environment's bin/ of this interpreter or of
    $VIRTUAL_ENV; the nearest ancestor process started from a virtual
    environment's bin/ (``python -m build`` and ``uv build`` run the build in a
    temporary environment of their own); the interpreter's user scripts
    directory (``pip install --user``); the interpreter's own directory. Only
    a uwsgi no other user can change counts (the others are in ``skipped``):
    an ancestor's argv[0] can name any directory.
    """
    skipped = [] if skipped is None else skipped
    here = Path(sys.executable)
    candidates: list[tuple[Path, str]] = [
        (here.parent, f"installed beside the interpreter {here}"),
        (Path(sys.prefix) / "bin", f"installed in the environment {sys.prefix} of the interpreter {here}"),
    ]
    if os.environ.get("VIRTUAL_ENV"):
        candidates.append((Path(os.environ["VIRTUAL_ENV"]) / "bin", "installed in the activated environment $VIRTUAL_ENV"))
    for directory, why in candidates:
        if _is_venv_bin(directory) and (found := trusted_uwsgi(directory, why, skipped)):
            return found
    for program, command in _ancestor_programs():
        why = f"installed beside {program}, which started this process ({command})"
        if _is_venv_bin(program.parent) and (found := trusted_uwsgi(program.parent, why, skipped)):
            return found
    user_scripts = _user_scripts_dir()
    why = f"installed in the user scripts directory {user_scripts} (pip install --user)"
    if user_scripts and (found := trusted_uwsgi(user_scripts, why, skipped)):
        return found
    return trusted_uwsgi(here.parent, f"installed beside the interpreter {here}", skipped)


def _user_scripts_dir() -> Path | None:
    import sysconfig  # late: only this path needs it

    try:
        return Path(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        return None


def find_default_uwsgi(skipped: list[str] | None = None) -> tuple[Path, str] | None:
    """The uwsgi the user runs, and why: the one installed with the user's
    Python (see uwsgi_beside_interpreter), then the first on PATH that no other
    user can change; why any other was passed over goes into ``skipped``."""
    skipped = [] if skipped is None else skipped
    beside = uwsgi_beside_interpreter(skipped)
    if beside:
        return beside
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        found = trusted_uwsgi(Path(directory or os.curdir), "found on PATH", skipped)
        if found:
            return found
    return None


def default_uwsgi() -> str | None:
    """The uwsgi the user runs: $UWSGI_PLUGIN_BACKEND_UWSGI, else find_default_uwsgi()."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    found = find_default_uwsgi()
    return str(found[0]) if found else None


# ---- 7. Choosing a build: plugin_dir() (RUNTIME_API) ----


def key_as_seen_by(carried: list[tuple[Path, dict]], binary: dict) -> str:
    """The binary's key, for messages: the backend learns which macros count
    with a compiler, so without one only a build of the same uwsgi.h and
    platform can tell; else the key is unknown here."""
    for _, record in carried:
        if record.get("dot_h_hash") == binary["dot_h_hash"] and record.get("platform", "").startswith(binary["platform"] + " "):
            lines = abi_lines(binary["cflags"], record)
            return f"{KEY_FORMAT}-{hash_of_parts(binary['dot_h_hash'], record['platform'], lines)}"
    return (f"unknown here: its uwsgi.h (hash {binary['dot_h_hash']}) or platform ({binary['platform']}) differs "
            "from every build this wheel carries")


def plugin_dir(uwsgi: str | None = None) -> str:
    """The absolute directory holding this wheel's ``<NAME>_plugin.so`` files
    built for ``uwsgi`` (default: the uwsgi the user runs)."""
    carried = builds()
    binary = uwsgi or default_uwsgi()
    if binary is None:
        raise NoMatchingBuild(
            "no uwsgi found to choose a build for (looked at $UWSGI_PLUGIN_BACKEND_UWSGI, "
            f"{Path(sys.executable).parent / 'uwsgi'} and PATH); name it: plugin_dir(uwsgi=PATH) or --uwsgi PATH"
        )
    wanted = binary_abi(binary)
    for directory, record in carried:
        if record_fits(record, wanted):
            return str(directory)
    if os.environ.get(BUILD_MISSING_ENV) == "1" and _build_missing(_distribution_name(carried), binary):
        return plugin_dir(binary)
    raise NoMatchingBuild(no_build_fits(binary, {**wanted, "key": key_as_seen_by(carried, wanted)}, carried))


BUILD_MISSING_ENV = "UWSGI_PLUGIN_BACKEND_BUILD_MISSING"


def _build_missing(distribution: str, binary: str) -> bool:
    """With $UWSGI_PLUGIN_BACKEND_BUILD_MISSING=1: build on first use, when the backend is installed here."""
    import importlib.util  # late: only this path needs it

    if importlib.util.find_spec("uwsgi_plugin_backend") is None:
        return False
    env = {k: v for k, v in os.environ.items() if k != BUILD_MISSING_ENV}
    result = subprocess.run([sys.executable, "-m", "uwsgi_plugin_backend", "build-missing", distribution, "--uwsgi", binary],
                            env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False)
    return result.returncode == 0


def _distribution_name(carried: list[tuple[Path, dict]]) -> str:
    if carried:
        return carried[0][1]["distribution"]
    from importlib.metadata import (
        packages_distributions,  # late: only this error needs it
    )

    names = packages_distributions().get(__package__ or "", [])
    return names[0] if names else (__package__ or "this distribution")


def _installed_from(distribution: str) -> dict | None:
    """The distribution's direct_url.json (PEP 610): where pip or uv installed it
    from when that was not an index; None for an index (or --find-links)."""
    try:
        from importlib.metadata import (
            distribution as find,  # late: only this error needs it
        )

        direct = json.loads(find(distribution).read_text("direct_url.json") or "null")
    except (ImportError, LookupError, ValueError, OSError):
        return None
    return direct if isinstance(direct, dict) and isinstance(direct.get("url"), str) else None


def _sdist_route(distribution: str, binary: str, keep: list[str] | tuple[str, ...] = ()) -> str:
    """How to rebuild this distribution from source for ``binary`` (and the uwsgi
    binaries in ``keep``), as fits where it was installed from: an index, a local
    directory (-e or not), an sdist, a wheel file or a VCS URL."""
    from urllib.parse import unquote, urlparse  # late: only this error needs them

    uwsgis = [binary, *keep]
    # One uwsgi: by the environment variable; several: -C uwsgi=... repeated (pip 23.1 and later).
    prefix = f"{ENV_VAR}={shlex.quote(binary)} " if len(uwsgis) == 1 else ""
    settings = "" if len(uwsgis) == 1 else "".join(f" -C uwsgi={shlex.quote(u)}" for u in uwsgis)
    direct = _installed_from(distribution)
    if direct is None:
        # Without --no-cache-dir, pip's wheel cache hands back the wheel it built for the old uwsgi.
        return f"{prefix}pip install --force-reinstall --no-binary {distribution} --no-cache-dir{settings} {distribution}"
    url = direct["url"]
    local = urlparse(url).scheme == "file"
    where = unquote(urlparse(url).path) if local else url
    if isinstance(direct.get("dir_info"), dict):
        if direct["dir_info"].get("editable"):
            return f"{prefix}pip install --no-cache-dir{settings} -e {shlex.quote(where)}"
        return f"{prefix}pip install --force-reinstall --no-cache-dir{settings} {shlex.quote(where)}"
    if isinstance(direct.get("vcs_info"), dict):
        vcs = direct["vcs_info"]
        requirement = f"{vcs.get('vcs', 'git')}+{url}" + (f"@{vcs['commit_id']}" if vcs.get("commit_id") else "")
        return f"{prefix}pip install --force-reinstall --no-cache-dir{settings} {shlex.quote(requirement)}"
    if where.endswith(".whl"):
        # A wheel has no sources pip could build from; the sdist beside it (python -m build writes both) has.
        name, version = Path(where).name.split("-")[:2]
        sdist = Path(where).with_name(f"{name}-{version}.tar.gz")
        if local and sdist.is_file():
            return f"{prefix}pip install --force-reinstall --no-cache-dir{settings} {shlex.quote(str(sdist))}"
        return ""
    return f"{prefix}pip install --force-reinstall --no-cache-dir{settings} {shlex.quote(where)}"  # an sdist


def _also_keep(binary: str, carried: list[tuple[Path, dict]]) -> list[str]:
    """The uwsgi this environment runs by default, when it is not ``binary`` and a build
    here fits it: a reinstall for ``binary`` alone would leave it without one."""
    try:
        own = default_uwsgi()
        if own is None or os.path.realpath(shutil.which(own) or own) == os.path.realpath(shutil.which(binary) or binary):
            return []
        abi = binary_abi(own)
    except (NoMatchingBuild, OSError, ValueError):
        return []
    return [own] if any(record_fits(record, abi) for _, record in carried) else []


def _python_option() -> str:
    """``--python`` with this interpreter, for a build-missing run from a tool's own environment;
    nothing inside uWSGI's embedded Python, whose sys.executable is no Python to run."""
    name = os.path.basename(sys.executable)
    return f" --python {shlex.quote(sys.executable)}" if name.startswith("python") else ""


def _why_not(record: dict, wanted: dict[str, str]) -> str:
    """For a build of the uwsgi's own ABI that cannot serve it here: why (unmet_need)."""
    unmet = unmet_need(record, wanted) if abi_fits(record, wanted) else None
    return f" (the ABI of this uwsgi, but {unmet})" if unmet else ""


def no_build_fits(binary: str, wanted: dict[str, str], carried: list[tuple[Path, dict]]) -> str:
    """The "no build fits" message: build-missing first, then the route through the source."""
    distribution = _distribution_name(carried)
    listing = "\n".join(f"  {record['abi_key']}: {record['summary']}{_why_not(record, wanted)}" for _, record in carried) or "  none"
    keep = _also_keep(binary, carried)
    route = _sdist_route(distribution, binary, keep)
    if route:
        names = " and ".join([shlex.quote(binary), *(f"{shlex.quote(u)} (the default uwsgi here, which a build "
                                                      "of this wheel fits)" for u in keep)])
        source = (f"or reinstall from source; this replaces the builds installed now with builds for {names} only:\n"
                  f"  {route}")
    else:
        where = (_installed_from(distribution) or {}).get("url", "a wheel file")
        # Installing that wheel replaces the builds installed now: it names the default uwsgi here too (keep).
        build = (f"pip wheel --no-deps -w DIR{''.join(f' -C uwsgi={shlex.quote(u)}' for u in [binary, *keep])} PROJECT"
                 if keep else f"{ENV_VAR}={shlex.quote(binary)} pip wheel --no-deps -w DIR PROJECT")
        source = (f"or build a wheel for it from the project's source and install that ({distribution} was installed "
                  f"from {where}, a wheel, which has no sources pip could build from):\n  {build}")
    return (
        f"{distribution} has no build of its plugins for {binary}\n"
        f"  that uwsgi is {wanted['summary']} (ABI key {wanted['key']});\n"
        f"the installed wheel carries builds for:\n{listing}\n"
        "A plugin built for another uWSGI can crash it. Build one for this uwsgi, from the sources the wheel carries "
        "(the builds it has stay):\n"
        f"  uwsgi-plugin-backend build-missing {distribution} --uwsgi {shlex.quote(binary)}{_python_option()}\n"
        "(the command comes with pip install uwsgi-plugin-backend here, or uv tool install uwsgi-plugin-backend "
        f"once for every environment), {source}"
    )


# ---- 8. python -m PACKAGE (RUNTIME_API: main) ----


def _ini_section(directory: str) -> str:
    """A [uwsgi] section loading every plugin of the build in ``directory``; need-plugin
    makes uwsgi stop when one cannot load instead of serving nothing."""
    names = json.loads((Path(directory) / "build.json").read_text())["plugins"]
    return f"[uwsgi]\nplugins-dir = {directory}\nneed-plugin = {','.join(names)}"


def main(argv: list[str] | None = None) -> int:
    import argparse  # late: uwsgi_plugin_backend imports this module on every build

    prog = f"python -m {__package__ or 'PACKAGE'}"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Print the directory holding this package's uWSGI plugins, for uwsgi --plugins-dir.",
    )
    parser.add_argument("--uwsgi", metavar="PATH", help="the uwsgi binary that will load the plugins "
                        f"(default: ${ENV_VAR}, the uwsgi beside this python, then PATH)")
    parser.add_argument("--ini", action="store_true", help="print a [uwsgi] ini section (plugins-dir, need-plugin) "
                        f"instead, for a uwsgi ini file's line: ini = exec://{prog} --ini")
    args = parser.parse_args(argv)
    try:
        if EDITABLE_POINTER.exists():  # an unreadable build directory must not read as "no build"
            os.listdir(editable_builds_dir())
        directory = plugin_dir(args.uwsgi)
        print(_ini_section(directory) if args.ini else directory)
    except NoMatchingBuild as error:
        message = str(error)
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, NotADirectoryError) and error.filename is None:  # refused; it says what to do
            message = str(error)
        else:  # an editable install's build directory (or this wheel's records) that cannot be read
            where = f"{getattr(error, 'filename', None) or ''}: {getattr(error, 'strerror', None) or error!r}".lstrip(": ")
            fix = ("rebuild it: uwsgi-plugin-backend rebuild PROJECT (or pip install -e PROJECT again)"
                   if EDITABLE_POINTER.exists() else f"reinstall it: pip install --force-reinstall {__package__}")
            message = f"cannot read this package's plugin builds ({where}); {fix}"
    else:
        return 0
    print(f"uwsgi-plugin-backend: error: {message}", file=sys.stderr)  # as the backend's errors.report
    return 1
