"""Where this wheel's uWSGI plugins are, for the uwsgi that will load them.

Written into every plugin wheel by uwsgi-plugin-backend; standard library
only, so an installed plugin needs nothing else at run time. The backend
computes ABI keys with this same module, so build and run time agree.

    uwsgi --plugins-dir "$(python -m PACKAGE)" --plugin NAME

ABI key: ``a2-<16 hex digits>``, for example ``a2-6f1c0b2a9d3e4f50`` (``a2``
is the key format: a later change of what is hashed gets another prefix).
The digits are the 64-bit FNV-1a hash of a canonical text:

    dot_h=<FNV-1a of `uwsgi --dot-h`, trailing white space removed, 16 hex>
    platform=machine=<ELF machine> class=<32|64>-<le|be> libc=<glibc|musl|none> time_t=<bytes> off_t=<bytes>
    <each -D token of `uwsgi --cflags` (split on white space, as written)
     whose macro changes a layout uwsgi.h declares, sorted, one per line>

The backend learns at build time, with the compiler, which macros change the
layout of a struct, union, enum or typedef of uwsgi.h (abi_layout.py); a
build's record carries that list, its platform line and its tokens. Macros
that only add or remove declarations (UWSGI_XML, UWSGI_JSON ...) are left
out: a plugin using a function the loading uwsgi lacks fails cleanly at
dlopen(), and the backend checks symbols at build time. The version string
is not in the key either: two releases with the same uwsgi.h and the same
layouts are the same ABI to a plugin (pip's uWSGI 2.0.31 and pyuwsgi 2.0.30
ship byte-identical headers), and a changed struct changes uwsgi.h.

At run time (no compiler) a build fits a uwsgi binary when the binary's
uwsgi.h hash and ELF platform (machine, class, libc family from PT_INTERP;
for a script such as pyuwsgi's `uwsgi`, its interpreter's) equal the
record's, and its CFLAGS filtered by the record's macro list give the
record's tokens. The load-time guard compiled into every plugin computes the
same canonical text in C from uwsgi_get_dot_h() and uwsgi_get_cflags().
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

BUILDS_DIR = Path(__file__).with_name("uwsgi_builds")
# An editable install (pip install -e) keeps its builds where the backend rebuilds them.
EDITABLE_POINTER = Path(__file__).with_name("_editable.json")
ENV_VAR = "UWSGI_PLUGIN_BACKEND_UWSGI"
KEY_FORMAT = "a2"
CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif)\b(.*)$")
DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
C_WHITESPACE = re.compile("[ \t\n\v\f\r]+")
# pip writes this line after "#!/bin/sh" when the interpreter's path has spaces.
SH_EXEC = re.compile(r"^'''exec' (.+?) \"\$0\" \"\$@\"")
# Shown in the human summary as +name or -name.
NOTABLE_FEATURES = ("ssl", "pcre", "pcre2", "routing", "xml", "yaml", "json", "zlib", "uuid", "cap", "as_shared_library")
ELF_MACHINES = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64", 183: "aarch64",
                243: "riscv", 258: "loongarch"}


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


def macro_name(token: str) -> str:
    """``-DNAME=value`` -> ``NAME``."""
    return token[2:].split("=", 1)[0]


def abi_defines(cflags: str, macros: Iterable[str]) -> list[str]:
    """The -D tokens of the CFLAGS whose macro is in ``macros``, sorted; split
    on the white space C's isspace() knows, as the load-time guard does."""
    wanted = set(macros)
    return sorted(token for token in C_WHITESPACE.split(cflags) if token.startswith("-D") and macro_name(token) in wanted)


def dot_h_hash(dot_h: bytes) -> str:
    return f"{fnv1a64(dot_h.rstrip()):016x}"


def canonical_text(dot_h_hash: str, platform: str, defines: list[str]) -> bytes:
    lines = [f"dot_h={dot_h_hash}", f"platform={platform}", *defines]
    return "".join(line + "\n" for line in lines).encode()


def abi_canonical(cflags: str, dot_h: bytes, macros: Iterable[str], platform: str) -> bytes:
    return canonical_text(dot_h_hash(dot_h), platform, abi_defines(cflags, macros))


def abi_hash(cflags: str, dot_h: bytes, macros: Iterable[str], platform: str) -> str:
    return f"{fnv1a64(abi_canonical(cflags, dot_h, macros, platform)):016x}"


def abi_key(cflags: str, dot_h: bytes, macros: Iterable[str], platform: str) -> str:
    return f"{KEY_FORMAT}-{abi_hash(cflags, dot_h, macros, platform)}"


def abi_summary(version: str, cflags: str) -> str:
    """``uWSGI 2.0.31 +ssl +xml -pcre ...``: version and notable features, for
    people (the same text the load-time guard prints); not part of the key."""
    defined = {macro_name(token) for token in C_WHITESPACE.split(cflags) if token.startswith("-D")}
    present = [f"UWSGI_{name.upper()}" in defined for name in NOTABLE_FEATURES]
    plus = [f"+{name}" for name, here in zip(NOTABLE_FEATURES, present) if here]
    minus = [f"-{name}" for name, here in zip(NOTABLE_FEATURES, present) if not here]
    return " ".join([f"uWSGI {version}", *plus, *minus])


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
    a script (pyuwsgi's console script) the interpreter it runs under (the
    shebang, or the exec line pip writes after ``#!/bin/sh``)."""
    path = os.path.realpath(shutil.which(uwsgi) or uwsgi)
    with open(path, "rb") as f:
        first, second = f.readline(4096), f.readline(4096)
    if first.startswith(b"#!"):
        command = shlex.split(first[2:].decode(errors="replace"))
        exec_line = SH_EXEC.match(second.decode(errors="replace"))
        if command == ["/bin/sh"] and exec_line:
            command = shlex.split(exec_line.group(1))
        if command and os.path.basename(command[0]) == "env" and len(command) > 1:
            command = command[1:]
        if command:
            return os.path.realpath(shutil.which(command[0]) or command[0])
    return path


def platform_of(uwsgi: str) -> str:
    """The ELF platform of the process a uwsgi binary or script runs as."""
    try:
        return elf_platform(process_elf(uwsgi))
    except (OSError, ValueError, struct.error) as error:
        raise NoMatchingBuild(f"cannot read the platform of {uwsgi}: {error}") from None


def record_fits(record: dict, binary: dict) -> bool:
    """Does the build ``record`` fit the uwsgi described by ``binary`` (its
    ``dot_h_hash``, ``platform`` and ``cflags``, from binary_abi())?  The same
    uwsgi.h, the same ELF platform, and the same tokens of the macros that
    build found to change layouts."""
    return (
        record.get("dot_h_hash") == binary["dot_h_hash"]
        and record.get("platform", "").startswith(binary["platform"] + " ")
        and abi_defines(binary["cflags"], record.get("layout_macros", [])) == record.get("abi_defines")
    )


def _ask(uwsgi: str, flag: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    try:
        result = subprocess.run([uwsgi, flag], capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    except OSError as error:
        raise NoMatchingBuild(f"cannot run {uwsgi}: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise NoMatchingBuild(f"{uwsgi} {flag} did not answer within 60 s") from None
    if result.returncode != 0:
        raise NoMatchingBuild(f"{uwsgi} {flag} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def cache_dir() -> Path:
    """The backend's cache: $UWSGI_PLUGIN_BACKEND_CACHE_DIR, else uwsgi-plugin-backend in the user's cache."""
    if os.environ.get("UWSGI_PLUGIN_BACKEND_CACHE_DIR"):
        return Path(os.environ["UWSGI_PLUGIN_BACKEND_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "uwsgi-plugin-backend"


def _cache_file() -> Path:
    return cache_dir() / "abi-keys.json"


def _read_cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(cache: dict) -> None:
    """Write-then-rename, so a reader never sees half a file; a cache we cannot write is no error."""
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".abi-keys-")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, path)
    except OSError:
        pass


def binary_abi(uwsgi: str) -> dict:
    """``{"summary", "version", "cflags", "dot_h_hash", "platform"}`` of a uwsgi
    binary (what record_fits compares), cached by its path, size and mtime."""
    path = os.path.realpath(shutil.which(uwsgi) or uwsgi)
    try:
        stat = os.stat(path)
    except OSError as error:
        raise NoMatchingBuild(f"cannot run {uwsgi}: {error.strerror}") from None
    identity = [stat.st_size, stat.st_mtime_ns]
    cache = _read_cache()
    entry = cache.get(path)
    if entry and entry.get("identity") == identity and "dot_h_hash" in entry:  # entries before key format a2 lack it
        return entry
    version = _ask(uwsgi, "--version").decode(errors="replace").strip()
    cflags = _ask(uwsgi, "--cflags").decode(errors="replace")
    dot_h = _ask(uwsgi, "--dot-h")
    entry = {
        "identity": identity,
        "version": version,
        "summary": abi_summary(version, cflags),
        "cflags": cflags,
        "dot_h_hash": dot_h_hash(dot_h),
        "platform": platform_of(uwsgi),
    }
    cache[path] = entry
    _write_cache(cache)
    return entry


def builds() -> list[tuple[Path, dict]]:
    """Every build this wheel carries: its directory and its record."""
    builds_dir = BUILDS_DIR
    if EDITABLE_POINTER.exists():
        builds_dir = Path(json.loads(EDITABLE_POINTER.read_text())["builds_dir"])
    return [(record.parent, json.loads(record.read_text())) for record in sorted(builds_dir.glob("*/build.json"))]


def default_uwsgi() -> str | None:
    """The uwsgi the user runs: $UWSGI_PLUGIN_BACKEND_UWSGI, the one beside
    this interpreter (a virtual environment's bin/), then PATH."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uwsgi")


def key_as_seen_by(carried: list[tuple[Path, dict]], binary: dict) -> str:
    """The binary's key, for messages: the backend learns which macros count
    with a compiler, so without one only a build of the same uwsgi.h and
    platform can tell; else the key is unknown here."""
    for _, record in carried:
        if record.get("dot_h_hash") == binary["dot_h_hash"] and record.get("platform", "").startswith(binary["platform"] + " "):
            defines = abi_defines(binary["cflags"], record["layout_macros"])
            return f"{KEY_FORMAT}-{fnv1a64(canonical_text(binary['dot_h_hash'], record['platform'], defines)):016x}"
    return f"{KEY_FORMAT}-? (uwsgi.h {binary['dot_h_hash']}, {binary['platform']}; no build here has that uwsgi.h)"


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
    wanted = {**wanted, "key": key_as_seen_by(carried, wanted)}
    distribution = carried[0][1]["distribution"] if carried else (__package__ or "this distribution")
    listing = "\n".join(f"  {record['abi_key']}: {record['summary']}" for _, record in carried) or "  none"
    raise NoMatchingBuild(
        f"{distribution} has no build of its plugins for {binary}\n"
        f"  that uwsgi is {wanted['summary']} (ABI key {wanted['key']});\n"
        f"the installed wheel carries builds for:\n{listing}\n"
        "A plugin built for another uWSGI can crash it. Build one for this uwsgi from source:\n"
        f"  {ENV_VAR}={binary} pip install --no-binary {distribution} --force-reinstall {distribution}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__ or 'PACKAGE'}",
        description="Print the directory holding this package's uWSGI plugins, for uwsgi --plugins-dir.",
    )
    parser.add_argument("--uwsgi", metavar="PATH", help="the uwsgi binary that will load the plugins "
                        f"(default: ${ENV_VAR}, the uwsgi beside this python, then PATH)")
    args = parser.parse_args(argv)
    try:
        print(plugin_dir(args.uwsgi))
    except NoMatchingBuild as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
