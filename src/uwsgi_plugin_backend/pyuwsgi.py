"""Building for pyuwsgi: uWSGI as a Python extension module, whose symbols
Python loads privately (RTLD_LOCAL). A plugin for it links against that
module, found beside itself once installed, so the loader resolves uWSGI's
symbols from the copy the pyuwsgi process already has."""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path

from .errors import BackendError
from .kit import UwsgiKit

FIND_MODULE = "import importlib.util as u; s = u.find_spec('pyuwsgi'); print(s.origin if s else '')"
# Installed plugins live in site-packages/<package>/uwsgi_builds/<build>/; pyuwsgi's module in site-packages/.
RPATH_TO_SITE_PACKAGES = "$ORIGIN/../../.."


@dataclasses.dataclass(frozen=True)
class PyuwsgiModule:
    path: Path  # .../site-packages/pyuwsgi.cpython-311-x86_64-linux-gnu.so

    @property
    def python_tag(self) -> str:
        """cp311 for pyuwsgi.cpython-311-x86_64-linux-gnu.so."""
        match = re.search(r"\.cpython-(\d+)", self.path.name)
        if match is None:
            raise BackendError(f"cannot tell the Python version of {self.path.name}; pyuwsgi builds need a CPython module")
        return f"cp{match.group(1)}"

    def link_flags(self, link_dir: Path, link_dir_relative: str) -> list[str]:
        """Flags for uwsgiconfig.py's LDFLAGS (split on white space, joined into a shell line)."""
        link_dir.mkdir(parents=True, exist_ok=True)
        (link_dir / self.path.name).unlink(missing_ok=True)
        (link_dir / self.path.name).symlink_to(self.path)
        return [f"-L{link_dir_relative}", f"-l:{self.path.name}", f"'-Wl,-rpath,{RPATH_TO_SITE_PACKAGES}'"]


# What pip writes instead of a shebang when the interpreter's path has spaces or is long:
#   #!/bin/sh
#   '''exec' "/path with spaces/bin/python" "$0" "$@"
SH_EXEC = re.compile(r"^'''exec' (.+?) \"\$0\" \"\$@\"")


def _interpreter(script: Path) -> list[str] | None:
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


def find_pyuwsgi_module(kit: UwsgiKit) -> PyuwsgiModule | None:
    """The pyuwsgi extension module behind ``kit``'s binary, if it is pyuwsgi's
    console script (a uWSGI built as a shared library)."""
    if "-DUWSGI_AS_SHARED_LIBRARY" not in kit.cflags.split():
        return None
    interpreter = _interpreter(kit.binary)
    if interpreter is None:
        return None
    try:
        result = subprocess.run([*interpreter, "-c", FIND_MODULE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackendError(f"cannot ask {interpreter[0]} (the interpreter of {kit.binary}) where pyuwsgi is: {error}") from None
    origin = result.stdout.strip()
    if result.returncode != 0 or not origin:
        raise BackendError(
            f"{kit.binary} is a uWSGI built as a shared library, but its interpreter {interpreter[0]} "
            f"cannot import pyuwsgi: {result.stderr.strip() or 'no module'}; reinstall pyuwsgi there"
        )
    return PyuwsgiModule(Path(origin))
