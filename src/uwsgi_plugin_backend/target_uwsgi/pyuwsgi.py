"""Building for pyuwsgi: uWSGI as a Python extension module, whose symbols
Python loads privately (RTLD_LOCAL) and which has no SONAME to link against.
A pyuwsgi build ships a small loader as ``<NAME>_plugin.so`` and the real
plugin beside it; the loader finds the pyuwsgi module the running process
has loaded, wherever it is installed (guard/pyuwsgi_loader.c)."""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
from pathlib import Path

from ..errors import BackendError
from ..runtime_api import ask_for_pyuwsgi
from ..runtime_api import script_interpreter as _interpreter
from .kit import UwsgiKit


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


@functools.cache  # asked by the build, then by each plugin's symbol check: run the interpreter once
def find_pyuwsgi_module(kit: UwsgiKit) -> PyuwsgiModule | None:
    """The pyuwsgi extension module behind ``kit``'s binary, if it is pyuwsgi's
    console script (a uWSGI built as a shared library)."""
    if "-DUWSGI_AS_SHARED_LIBRARY" not in kit.cflags.split():
        return None
    interpreter = _interpreter(kit.binary)
    if interpreter is None:
        return None
    try:
        result = ask_for_pyuwsgi(interpreter, 60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackendError(f"cannot ask {interpreter[0]} (the interpreter of {kit.binary}) where pyuwsgi is: {error}") from None
    origin = result.stdout.strip()
    if result.returncode != 0 or not origin:
        raise BackendError(
            f"{kit.binary} is a uWSGI built as a shared library, but its interpreter {interpreter[0]} "
            f"cannot import pyuwsgi: {result.stderr.strip() or 'no module'}; reinstall pyuwsgi there"
        )
    return PyuwsgiModule(Path(origin))
