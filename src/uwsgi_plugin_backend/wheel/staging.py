"""The import package a plugin wheel ships, staged in a temporary directory:
the runtime module, a generated ``__init__``/``__main__`` (unless the project
has its own), and the builds added by the caller."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import BackendError
from ..plugin_build.entry_points import user_package_dir
from ..settings import Settings

RUNTIME_MODULE = Path(__file__).parents[1] / "runtime" / "_uwsgi_plugin.py"
GENERATED_INIT = "from ._uwsgi_plugin import plugin_dir\n\n__all__ = [\"plugin_dir\"]\n"
GENERATED_MAIN = "from ._uwsgi_plugin import main\n\nraise SystemExit(main())\n"


@contextlib.contextmanager
def staged_package(settings: Settings) -> Iterator[Path]:
    """A fresh directory holding the package's generated files; the wheel is
    written beside it. Always a temporary directory: its path goes to
    scikit-build-core in settings that split on ';'."""
    with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
        if ";" in tmp:
            raise BackendError(f"the temporary directory {tmp} has a ';' in its path; set TMPDIR to a plainer one")
        staging = Path(tmp) / "staging" / settings.package
        own = user_package_dir(settings.root, settings.package)
        staging.mkdir(parents=True)
        shutil.copyfile(RUNTIME_MODULE, staging / "_uwsgi_plugin.py")
        for filename, text in (("__init__.py", GENERATED_INIT), ("__main__.py", GENERATED_MAIN)):
            if own is None or not (own / filename).exists():
                (staging / filename).write_text(text)
        yield staging
