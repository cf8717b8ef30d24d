"""Where this wheel's uWSGI plugins are, for the uwsgi that will load them.

Written into every plugin wheel by uwsgi-plugin-backend; standard library
only, so an installed plugin needs nothing else at run time. The backend
computes ABI keys with this same module, so build and run time agree.

    uwsgi --plugins-dir "$(python -m PACKAGE)" --plugin NAME

ABI key: ``<version>-<16 hex digits>``, for example ``2.0.31-6f1c0b2a9d3e4f50``.
The digits are the 64-bit FNV-1a hash of a canonical text made from the
binary alone:

    dot_h=<FNV-1a of `uwsgi --dot-h`, trailing white space removed, 16 hex>
    <each -D token of `uwsgi --cflags` (split on white space, as written)
     whose macro uwsgi.h tests in #if/#ifdef/#ifndef/#elif, or UWSGI_VERSION,
     sorted, one per line>

Macros uwsgi.h never tests (embedded plugin lists, the plugin dir) cannot
change a struct layout and are left out by that rule. Two binaries with the
same key are interchangeable for plugins. The load-time guard compiled into
every plugin computes the same text in C from uwsgi_get_dot_h() and
uwsgi_get_cflags().
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUILDS_DIR = Path(__file__).with_name("uwsgi_builds")
# An editable install (pip install -e) keeps its builds where the backend rebuilds them.
EDITABLE_POINTER = Path(__file__).with_name("_editable.json")
ENV_VAR = "UWSGI_PLUGIN_BACKEND_UWSGI"
CACHE_ENV = "UWSGI_PLUGIN_BACKEND_CACHE_DIR"
CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif)\b(.*)$")
DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
C_WHITESPACE = re.compile("[ \t\n\v\f\r]+")
# Shown in the human summary as +name or -name; the key itself uses every tested macro.
NOTABLE_FEATURES = ("ssl", "pcre", "pcre2", "routing", "xml", "yaml", "json", "zlib", "uuid", "cap", "as_shared_library")


class NoMatchingBuild(LookupError):
    """This wheel holds no build of its plugins for the given uwsgi."""


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def tested_macros(dot_h: bytes) -> set[str]:
    """Every identifier uwsgi.h tests in a preprocessor conditional.

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
    return names | {"UWSGI_VERSION"}


def abi_defines(cflags: str, dot_h: bytes) -> list[str]:
    """The -D tokens of the CFLAGS that can change what uwsgi.h declares; split
    on the white space C's isspace() knows, as the load-time guard does."""
    tested = tested_macros(dot_h)
    tokens = C_WHITESPACE.split(cflags)
    return sorted(token for token in tokens if token.startswith("-D") and token[2:].split("=", 1)[0] in tested)


def abi_canonical(cflags: str, dot_h: bytes) -> bytes:
    lines = [f"dot_h={fnv1a64(dot_h.rstrip()):016x}", *abi_defines(cflags, dot_h)]
    return "".join(line + "\n" for line in lines).encode()


def abi_hash(cflags: str, dot_h: bytes) -> str:
    return f"{fnv1a64(abi_canonical(cflags, dot_h)):016x}"


def abi_key(version: str, cflags: str, dot_h: bytes) -> str:
    return f"{version}-{abi_hash(cflags, dot_h)}"


def abi_summary(version: str, cflags: str, dot_h: bytes) -> str:
    """``uWSGI 2.0.31 +ssl +xml -pcre ...``: the notable features, for people
    (the same text the load-time guard prints)."""
    defined = {token[2:].split("=", 1)[0] for token in abi_defines(cflags, dot_h)}
    present = [f"UWSGI_{name.upper()}" in defined for name in NOTABLE_FEATURES]
    plus = [f"+{name}" for name, here in zip(NOTABLE_FEATURES, present) if here]
    minus = [f"-{name}" for name, here in zip(NOTABLE_FEATURES, present) if not here]
    return " ".join([f"uWSGI {version}", *plus, *minus])


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
    """The backend's cache, always an absolute path (a relative one would land in
    whatever directory a build runs in, the project's own):
    $UWSGI_PLUGIN_BACKEND_CACHE_DIR (relative: refused), else $XDG_CACHE_HOME
    (relative: ignored, as the XDG spec says), else ~/.cache, else, with no
    usable home, a directory of this user's in the temporary directory.
    Refusal is a NotADirectoryError: the runtime then works uncached, the backend stops."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        if not os.path.isabs(explicit):
            raise NotADirectoryError(
                f"$UWSGI_PLUGIN_BACKEND_CACHE_DIR={explicit!r} is a relative path; set an absolute one "
                f"(for example {os.path.abspath(explicit)!r})"
            )
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")  # stays "~" with HOME unset and no passwd entry
        if not os.path.isabs(home):
            return Path(tempfile.gettempdir()) / f"uwsgi-plugin-backend-{os.getuid()}"
        base = os.path.join(home, ".cache")
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
    """``{"key", "summary", "version"}`` of a uwsgi binary, cached by its path, size and mtime."""
    path = os.path.realpath(shutil.which(uwsgi) or uwsgi)
    try:
        stat = os.stat(path)
    except OSError as error:
        raise NoMatchingBuild(f"cannot run {uwsgi}: {error.strerror}") from None
    identity = [stat.st_size, stat.st_mtime_ns]
    cache = _read_cache()
    entry = cache.get(path)
    if entry and entry.get("identity") == identity:
        return entry
    version = _ask(uwsgi, "--version").decode(errors="replace").strip()
    cflags = _ask(uwsgi, "--cflags").decode(errors="replace")
    dot_h = _ask(uwsgi, "--dot-h")
    entry = {
        "identity": identity,
        "version": version,
        "key": abi_key(version, cflags, dot_h),
        "summary": abi_summary(version, cflags, dot_h),
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
        if record["abi_key"] == wanted["key"]:
            return str(directory)
    distribution = carried[0][1]["distribution"] if carried else (__package__ or "this distribution")
    listing = "\n".join(f"  {record['abi_key']}: {record['summary']}" for _, record in carried) or "  none"
    raise NoMatchingBuild(
        f"{distribution} has no build of its plugins for {binary}\n"
        f"  that uwsgi is {wanted['summary']} (ABI key {wanted['key']});\n"
        f"the installed wheel carries builds for:\n{listing}\n"
        "A plugin built for another uWSGI can crash it. Build one for this uwsgi from source:\n"
        f"  {ENV_VAR}={binary} pip install --no-binary {distribution} --force-reinstall {distribution}"
    )


def _ini_section(directory: str) -> str:
    """A [uwsgi] section loading every plugin of the build in ``directory``; need-plugin
    makes uwsgi stop when one cannot load instead of serving nothing."""
    names = json.loads((Path(directory) / "build.json").read_text())["plugins"]
    return f"[uwsgi]\nplugins-dir = {directory}\nneed-plugin = {','.join(names)}"


def main(argv: list[str] | None = None) -> int:
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
            os.listdir(json.loads(EDITABLE_POINTER.read_text())["builds_dir"])
        directory = plugin_dir(args.uwsgi)
        print(_ini_section(directory) if args.ini else directory)
    except NoMatchingBuild as error:
        print(f"uwsgi-plugin-backend: error: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as error:
        # An editable install's build directory (or this wheel's records) that cannot be read.
        where = f"{getattr(error, 'filename', None) or ''}: {getattr(error, 'strerror', None) or error!r}".lstrip(": ")
        fix = ("rebuild it: uwsgi-plugin-backend rebuild PROJECT (or pip install -e PROJECT again)"
               if EDITABLE_POINTER.exists() else f"reinstall it: pip install --force-reinstall {__package__}")
        print(f"uwsgi-plugin-backend: error: cannot read this package's plugin builds ({where}); {fix}", file=sys.stderr)
        return 1
    return 0
