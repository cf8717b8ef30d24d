"""The C compiler the backend runs itself (load-time guard, pyuwsgi loader,
layout learning, library lookup): the one uwsgiconfig.py uses, and one clear
error when there is none."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sysconfig
from pathlib import Path

from ..errors import BackendError


def compiler() -> list[str]:
    """The C compiler uwsgiconfig.py uses: $CC, else the interpreter's CC, else gcc."""
    command = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "gcc")
    if not command:
        raise BackendError(f"$CC={os.environ.get('CC', '')!r} names no compiler; unset it or name one (CC=gcc)")
    return command


def compiler_program() -> list[str]:
    """compiler() without the options $CC may carry (CC="gcc -m32"): what compiles
    uwsgi.h as the binary's own CFLAGS alone lay it out (the plugin build checks
    that $CC's options change nothing)."""
    command = compiler()
    index = 0
    while index < len(command) and not command[index].startswith("-"):
        index += 1
    return command[:index] or command[:1]


def run_compiler(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` (a compiler call); no compiler at all is the user's to fix."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    except OSError as error:
        raise BackendError(
            f"no C compiler: cannot run {command[0]} ({error.strerror}); install gcc (apt-get install gcc) "
            "or name one with $CC"
        ) from None


def output_of(result: subprocess.CompletedProcess[bytes]) -> str:
    """What a compiler said, for a message."""
    return (result.stdout + result.stderr).decode(errors="replace")


# Headers uwsgi.h includes for a feature of the binary, and the Debian package that has each.
FEATURE_HEADERS = {
    "sys/capability.h": "libcap-dev",
    "pcre.h": "libpcre3-dev",
    "pcre2.h": "libpcre2-dev",
    "openssl/ssl.h": "libssl-dev",
    "openssl/conf.h": "libssl-dev",
    "uuid/uuid.h": "uuid-dev",
    "zlib.h": "zlib1g-dev",
    "libxml/parser.h": "libxml2-dev",
    "yaml.h": "libyaml-dev",
    "jansson.h": "libjansson-dev",
}
MISSING_HEADER = re.compile(r"fatal error: ([\w./+-]+\.(?:h|hh|hpp)): No such file or directory")


def missing_header(output: str) -> str | None:
    """The header a compile could not find, from the compiler's output."""
    match = MISSING_HEADER.search(output)
    return match.group(1) if match else None


def system_header_hint(output: str) -> str:
    """What to install when a system header is missing: the package of a uwsgi
    feature's header, or else the development package that provides it."""
    header = missing_header(output)
    if header is None:
        return ""
    package = FEATURE_HEADERS.get(header)
    if package is None:
        return f"\n\n{header} is not installed: install the development package that provides it."
    return (
        f"\n\n{header} is not installed; the uwsgi binary was built with a feature that needs it. "
        f"Install it: apt-get install {package} (Fedora: the -devel package)."
    )
