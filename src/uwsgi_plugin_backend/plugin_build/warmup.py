"""The wheel writer's imports, loaded in a thread while the compiler driver runs.

A frontend runs each hook in a new interpreter, where importing
scikit-build-core's wheel writer and the ELF readers costs as much as compiling
a small plugin, and the main thread sits idle while the driver compiles. The
thread starts only once the driver is running: importing beside the main
thread's own work takes the GIL from it (measured: the 24 ms before the driver
starts became 140 ms).
"""

from __future__ import annotations

import contextlib
import importlib
import threading

_thread: threading.Thread | None = None
_modules: tuple[str, ...] = ()


def prepare(*modules: str) -> None:
    """Name the modules to import once a child process is working (the wheel
    builder does: the plugin build below it knows when, not what)."""
    global _modules
    _modules = modules


def _load() -> None:
    for module in _modules:
        with contextlib.suppress(ImportError):  # the main thread's own import reports it
            importlib.import_module(module)


def start() -> None:
    """Begin the imports (once per process): call when a child process is working."""
    global _thread
    if _thread is None and _modules:
        _thread = threading.Thread(target=_load, name="imports", daemon=True)
        _thread.start()


def finish() -> None:
    """Wait for the imports, if they began."""
    if _thread is not None:
        _thread.join()
