"""Building for pyuwsgi: uWSGI as a Python extension module, whose symbols
Python loads privately (RTLD_LOCAL) and which has no SONAME to link against.
A pyuwsgi build ships a small loader as ``<NAME>_plugin.so`` and the real
plugin beside it; the loader finds the pyuwsgi module the running process
has loaded, wherever it is installed (guard/pyuwsgi_loader.c)."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
from pathlib import Path

from ..errors import BackendError
from ..runtime_api import ask_for_pyuwsgi, elf_interpreter, process_elf
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
def find_pyuwsgi_module(kit: UwsgiKit, timeout: float) -> PyuwsgiModule | None:
    """The pyuwsgi extension module behind ``kit``'s binary, if it is pyuwsgi's
    console script (a uWSGI built as a shared library); its Python may take
    ``timeout`` seconds to say where."""
    if "-DUWSGI_AS_SHARED_LIBRARY" not in kit.cflags.split():
        return None
    interpreter = _interpreter(kit.binary)
    if interpreter is None:
        return None
    try:
        result = ask_for_pyuwsgi(interpreter, timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackendError(f"cannot ask {interpreter[0]} (the interpreter of {kit.binary}) where pyuwsgi is: {error}") from None
    origin = result.stdout.strip()
    if result.returncode != 0 or not origin:
        raise BackendError(
            f"{kit.binary} is a uWSGI built as a shared library, but its interpreter {interpreter[0]} "
            f"cannot import pyuwsgi: {result.stderr.strip() or 'no module'}; reinstall pyuwsgi there"
        )
    module = Path(origin)
    _check_module_belongs(kit.binary, interpreter[0], module)
    return PyuwsgiModule(module)


def _installed_with(script: Path) -> list[Path]:
    """The pyuwsgi modules installed with the console script ``script``: beside its
    bin/ (pip install --target DIR: DIR/bin/uwsgi and DIR/pyuwsgi*.so), or in the
    site-packages of its prefix (a venv, --prefix, --user)."""
    prefix = Path(os.path.abspath(script)).parent.parent
    return sorted({*prefix.glob("pyuwsgi*.so"), *prefix.glob("lib*/python*/*-packages/pyuwsgi*.so")})


def _machine(path: Path) -> str:
    try:
        return elf_interpreter(path)[0].split()[0].removeprefix("machine=")
    except (OSError, ValueError):
        return "an unknown machine"


def _check_module_belongs(script: Path, interpreter: str, module: Path) -> None:
    """Stop when the pyuwsgi that ``script``'s interpreter imports is not the one
    installed with the script, or that one is for another machine: the build
    would be for a uWSGI the named uwsgi does not run."""
    here = _machine(Path(process_elf(str(script))))
    installed = _installed_with(script)
    for candidate in installed:
        if _machine(candidate) != here:
            raise BackendError(
                f"{script} belongs to the pyuwsgi at {candidate}, which is for {_machine(candidate)}, but its "
                f"interpreter {interpreter} runs on {here} and imports {module}: a build here would be for that "
                f"one. Build on a machine of that pyuwsgi's ({_machine(candidate)}), with the Python that will run it"
            )
    if installed and os.path.realpath(module) not in {os.path.realpath(path) for path in installed}:
        raise BackendError(
            f"{script}'s interpreter {interpreter} imports pyuwsgi from {module}, not the pyuwsgi installed with "
            f"the script ({', '.join(map(str, installed))}; pip install --target puts it where that Python does not "
            "look): a build here would be for another uWSGI. Name the uwsgi script of the environment whose pyuwsgi "
            "you will run"
        )
