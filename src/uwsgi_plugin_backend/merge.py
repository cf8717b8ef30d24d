"""Join plugin wheels built on different machines (one CI job per uWSGI
version or platform) into one wheel that carries every build."""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .errors import BackendError
from .runtime._uwsgi_plugin import BUILDS_DIR as RUNTIME_BUILDS_DIR
from .wheel_files import read_wheel, wheel_epoch, write_wheel

BUILDS_DIR = RUNTIME_BUILDS_DIR.name  # the directory the runtime module reads


def _build_of(name: str) -> str | None:
    """``pkg/uwsgi_builds/<build>/...`` -> ``pkg/uwsgi_builds/<build>``, else None."""
    parts = PurePosixPath(name).parts
    if len(parts) >= 4 and parts[1] == BUILDS_DIR:
        return "/".join(parts[:3])
    return None


def _identity(path: Path) -> tuple:
    try:
        name, version, build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as error:
        raise BackendError(f"{path} is not a wheel: {error}") from None
    return name, version, build, frozenset(tags)


def _digest(files: dict[str, bytes], prefix: str) -> str:
    digest = hashlib.sha256()
    for name in sorted(n for n in files if n.startswith(prefix + "/")):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def merge_wheels(wheels: list[Path], output_dir: Path) -> Path:
    """Write one wheel holding every uWSGI build of ``wheels`` into ``output_dir``."""
    if len(wheels) < 2:
        raise BackendError("merge needs at least two wheels")
    identities = {path: _identity(path) for path in wheels}
    first = wheels[0]
    for path, identity in identities.items():
        for label, index in (("project", 0), ("version", 1), ("build tag", 2), ("tags", 3)):
            if identity[index] != identities[first][index]:
                raise BackendError(
                    f"cannot merge {first.name} and {path.name}: their {label} differ; "
                    "merge only builds of the same project version with the same wheel tags"
                )
    merged = read_wheel(first)
    for path in wheels[1:]:
        files = read_wheel(path)
        for name in sorted(set(merged) | set(files)):
            build = _build_of(name)
            if build is None and merged.get(name) != files.get(name):
                raise BackendError(
                    f"cannot merge {first.name} and {path.name}: {name} differs between them "
                    "(only their uwsgi_builds/ may differ; were they built from the same source?)"
                )
        for build in sorted({b for b in map(_build_of, files) if b}):
            if any(n.startswith(build + "/") for n in merged):
                if _digest(merged, build) != _digest(files, build):
                    raise BackendError(
                        f"cannot merge {path.name}: it carries {build} (the same ABI key) with other "
                        f"contents than {first.name}; rebuild one of them"
                    )
                continue
            merged.update({n: data for n, data in files.items() if n.startswith(build + "/")})
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / first.name
    if target.resolve() in {path.resolve() for path in wheels}:
        raise BackendError(f"the merged wheel would overwrite its input {target}; choose another -o directory")
    write_wheel(merged, target, max(wheel_epoch(path) for path in wheels))
    return target
