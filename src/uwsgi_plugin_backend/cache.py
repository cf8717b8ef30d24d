"""The backend's cache directory and the one way files and directories are
written there and elsewhere: aside, then renamed, so that nobody ever sees one
half written; and the one probe of whether a directory can be written."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import BackendError
from .runtime_api import cache_dir_named


@dataclasses.dataclass(frozen=True)
class CacheDir:
    """The cache directory as the settings give it: ``named`` is
    $UWSGI_PLUGIN_BACKEND_CACHE_DIR, None the default place. It is found and
    checked where a build first needs it, so that a hook that needs no cache
    (metadata, sdist) works without one."""

    named: str | None

    def path(self) -> Path:
        """Shared with the runtime module, which keeps its ABI keys there."""
        try:
            return cache_dir_named(self.named)
        except NotADirectoryError as error:  # refused: a relative $UWSGI_PLUGIN_BACKEND_CACHE_DIR, or one others can change
            raise BackendError(str(error)) from None


def _as_made(path: str, mode: int) -> None:
    """Give what mkstemp/mkdtemp made (0600/0700) the mode open()/mkdir() would:
    mkstemp's kept wheels from other users."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


@contextlib.contextmanager
def written_aside(target: Path) -> Iterator[Path]:
    """A hidden file beside ``target`` for the block to write; renamed onto
    ``target`` when the block succeeds, removed when it fails: nobody ever sees
    ``target`` half written."""
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    _as_made(partial, 0o666)
    try:
        yield Path(partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


@contextlib.contextmanager
def directory_aside(target: Path) -> Iterator[Path]:
    """A hidden directory beside ``target`` for the block to fill; renamed onto
    ``target`` when the block succeeds (an OSError if a directory that is not
    empty is there), removed whatever happens: nobody ever sees ``target`` half made."""
    partial = tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        _as_made(partial, 0o777)
        yield Path(partial)
        os.rename(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_atomically(target: Path, data: bytes | str) -> None:
    """Write ``data`` to ``target`` through written_aside()."""
    with written_aside(target) as partial:
        if isinstance(data, str):
            partial.write_text(data)
        else:
            partial.write_bytes(data)


def store_file(source: Path, target: Path) -> None:
    """Copy ``source`` into the cache at ``target``, whole or not at all; a cache
    that cannot be written is no error."""
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        with written_aside(target) as partial:
            shutil.copyfile(source, partial)


def _probe(directory: Path) -> None:
    """Make a file in ``directory`` and remove it, or raise OSError: the one
    writability probe (access() says yes to root on a read-only mount)."""
    with tempfile.TemporaryFile(dir=directory):
        pass


def can_write(directory: Path) -> bool:
    """Whether files can be made in ``directory`` (or, when it is not there yet, in its parent)."""
    try:
        _probe(directory if directory.exists() else directory.parent)
        return True
    except OSError:
        return False


def writable_directory(path: Path, refusal: str, fix: str) -> Path:
    """Make ``path`` and prove it writable, or fail with one message: the
    ``refusal`` ("cannot write the output directory X"), the reason, the ``fix``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as error:
        raise BackendError(f"{refusal}: {error.strerror or error}; {fix}") from None
    return path
