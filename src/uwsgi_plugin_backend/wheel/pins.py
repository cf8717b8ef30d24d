"""``pin-uwsgi = true``: Requires-Dist on the exact uwsgi or pyuwsgi release
the plugins were built against, for a project that lists ``dependencies`` in
``[project] dynamic`` (PEP 621).

scikit-build-core takes dynamic dependencies only from a provider named in
the project's own ``tool.scikit-build`` table, so the backend adds the
requirement to the METADATA scikit-build-core wrote instead.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from ..errors import BackendError, log
from ..settings import Settings
from ..target_uwsgi.find import ChosenUwsgi
from .files import read_wheel, wheel_epoch, write_wheel


def uwsgi_pins(settings: Settings, chosen: list[ChosenUwsgi]) -> list[str] | None:
    """With pin-uwsgi: ``uwsgi==X`` / ``pyuwsgi==X`` for the distribution the target binary belongs to."""
    if not settings.pin_uwsgi:
        return None
    if "dependencies" not in settings.dynamic:
        raise BackendError(
            "pin-uwsgi = true makes the wheel's dependencies depend on the uwsgi it is built for, "
            "which PEP 621 allows only for dynamic fields: add dynamic = [\"dependencies\"] to [project] "
            "(and remove a static dependencies list)"
        )
    pins = set()
    for target in chosen:
        owner = owning_distribution(target.path)
        if owner is None:
            log(f"pin-uwsgi: {target.path} belongs to no installed Python distribution; nothing to pin for it")
            continue
        pins.add(f"{owner[0]}=={owner[1]}")
    if len(pins) > 1:
        raise BackendError(f"pin-uwsgi: the target binaries come from {', '.join(sorted(pins))}; a wheel can pin only one")
    if pins:
        log(f"pin-uwsgi: Requires-Dist {', '.join(pins)}")
    return sorted(pins)


def owning_distribution(binary: Path) -> tuple[str, str] | None:
    """(name, version) of the installed distribution whose files include ``binary``."""
    prefix = binary.parent.parent
    libdir = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    search = sorted({str(p) for p in prefix.glob("lib/python3*/site-packages")} | {str(prefix / libdir)})
    target = binary.resolve()
    for dist in metadata.distributions(path=search):
        for file in dist.files or ():
            if Path(file.locate()).resolve() == target:
                return dist.metadata["Name"], dist.version
    return None


def with_requirements(metadata_text: bytes, requirements: list[str]) -> bytes:
    """METADATA with ``Requires-Dist`` lines added after the header's last line."""
    head, separator, body = metadata_text.partition(b"\n\n")
    lines = [f"Requires-Dist: {requirement}".encode() for requirement in requirements]
    return b"\n".join([head, *lines]) + (separator + body if separator else b"\n")


def pin_metadata_dir(dist_info: Path, requirements: list[str]) -> None:
    path = dist_info / "METADATA"
    path.write_bytes(with_requirements(path.read_bytes(), requirements))


def pin_wheel(wheel: Path, requirements: list[str]) -> None:
    files = read_wheel(wheel)
    [name] = [n for n in files if n.endswith(".dist-info/METADATA") and n.count("/") == 1]
    files[name] = with_requirements(files[name], requirements)
    write_wheel(files, wheel, wheel_epoch(wheel))
