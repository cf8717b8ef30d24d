"""One build of the project's plugins per distinct uWSGI ABI: the kit read
from each target binary, the plugins compiled for it, and the record that
the runtime module selects builds by."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .._version import __version__
from ..cache import writable_directory
from ..errors import BackendError, log
from ..locking import locked
from ..settings import MachineSettings, Settings
from ..target_uwsgi.abi import TargetAbi, target_abi
from ..target_uwsgi.find import ChosenUwsgi, warn_fallback
from ..target_uwsgi.kit import UwsgiKit
from ..target_uwsgi.kit_cache import read_kit
from ..target_uwsgi.pyuwsgi import PyuwsgiModule, find_pyuwsgi_module
from .entry_points import check_entry_points
from .loader import compile_loader, real_plugin_link_flags, real_plugin_name
from .plugin import BuildOptions, BuiltPlugin, build_plugin, plugin_name


@dataclasses.dataclass(frozen=True)
class UwsgiBuild:
    abi: TargetAbi
    plugins: list[BuiltPlugin]
    pyuwsgi: PyuwsgiModule | None
    loaders: dict[str, Path]  # NAME -> its loader (load_guard.py), shipped as NAME_plugin.so
    glibc: str | None  # the newest GLIBC_x.y its .so files need (needs.py); None off glibc
    python: str | None  # cp311: a pyuwsgi build whose plugins call the Python C API serves that CPython only

    def record(self, distribution: str) -> dict[str, object]:
        return {
            "distribution": distribution,
            "plugins": [plugin.name for plugin in self.plugins],
            **self.abi.record(),  # what the runtime module's record_fits compares with a uwsgi binary
            "uwsgi_version": self.abi.kit.version,
            "uwsgi_cflags": self.abi.kit.cflags,
            "pyuwsgi_module": self.pyuwsgi.path.name if self.pyuwsgi else None,
            "glibc": self.glibc,  # the runtime module skips a build that needs a newer glibc than the machine's
            "python": self.python,  # ... and one for another Python than the pyuwsgi's
            "built_by": f"uwsgi-plugin-backend {__version__}",
        }

    def stage(self, distribution: str, target: Path) -> None:
        """Copy the plugins and their record (of ``distribution``) into ``target``,
        the ABI's directory (``<builds dir>/<build_dir_name>``)."""
        target.mkdir(parents=True, exist_ok=True)
        for plugin in self.plugins:  # uWSGI opens the loader, which opens the real plugin beside it
            shutil.copyfile(plugin.shared_object, target / real_plugin_name(plugin.name))
            shutil.copyfile(self.loaders[plugin.name], target / plugin.shared_object.name)
        (target / "build.json").write_text(json.dumps(self.record(distribution), indent=2, sort_keys=True) + "\n")


def distinct_abis(chosen: list[ChosenUwsgi], variants: tuple[str, ...], work: Path, machine: MachineSettings) -> list[TargetAbi]:
    """Read each binary's kit and compute its ABI, then (``variants``, the
    abi-variants setting) the ABIs of its other feature sets. Two with the same
    ABI key are built for once, when each build would fit the other binary (the
    runtime module's rule); else each gets its own. Binaries come first."""
    abis: dict[str, TargetAbi] = {}  # by build directory
    binaries = []
    for target in chosen:
        log(f"building for {target.path} ({target.reason})")
        if target.fallback:
            warn_fallback(target)
        abi = _add(abis, target_abi(read_kit(target.path, machine), machine.cache_dir))
        if abi is not None:
            log(f"  {abi.summary}, ABI key {abi.key}")
            binaries.append(abi)
    for abi in binaries if variants else []:
        from ..target_uwsgi.variants import variant_abis  # late: only variant builds need it

        if find_pyuwsgi_module(abi.kit, machine.uwsgi_timeout):
            log(f"  abi-variants: none for {abi.kit.binary}, a pyuwsgi: its wheels on PyPI have one feature set")
            continue
        log(f"  abi-variants of {abi.kit.binary}: {', '.join(variants)}")
        for variant in variant_abis(abi, variants, kit_directory(abi.kit, work / abi.build_dir_name), machine.cache_dir):
            if (added := _add(abis, variant)) and added.variant:
                log(f"  abi-variant {added.variant.label}: {added.summary}, ABI key {added.key}")
    return list(abis.values())


def _name(abi: TargetAbi) -> str:
    return str(abi.kit.binary) if abi.variant is None else f"abi-variant {abi.variant.label}"


def _add(abis: dict[str, TargetAbi], abi: TargetAbi) -> TargetAbi | None:
    """Add ``abi`` unless a build of its key fits its binary and the other way
    round (None: one build serves both); one of its key that serves other
    binaries stays, and ``abi`` goes into a directory of its own."""
    same_key = [other for other in abis.values() if other.key == abi.key]
    for other in same_key:
        if other.fits(abi.kit) and abi.fits(other.kit):
            log(f"  {_name(abi)} has the ABI of {_name(other)} ({abi.key}); one build serves both")
            return None
    if same_key:
        abi = dataclasses.replace(abi, beside=True)
        log(f"  {_name(abi)} has the ABI key of {_name(same_key[0])} ({abi.key}), but a build for one would not be "
            f"chosen for the other (their CFLAGS differ in what only one learned): built apart, in {abi.build_dir_name}")
    abis[abi.build_dir_name] = abi
    return abi


def mismatch_fix(config: Settings) -> str:
    return (
        f"Use the build for this uwsgi: --plugins-dir \"$(python -m {config.package} --uwsgi /path/to/this/uwsgi)\", "
        f"or build one: uwsgi-plugin-backend build-missing {config.name}"
    )


def kit_directory(kit: UwsgiKit, work: Path) -> Path:
    """Where ``kit``'s uwsgi.h and uwsgiconfig.py lie: the cache, else (no writable
    cache) a copy in ``work`` for this build only."""
    if kit.directory is not None:
        return kit.directory
    kit.write(work / "kit")
    return work / "kit"


def build_for(abi: TargetAbi, config: Settings, names: list[str], options: BuildOptions) -> UwsgiBuild:
    """Build every plugin of the project for ``abi``'s uwsgi in <build dir>/<its ABI directory>."""
    work = options.root / abi.build_dir_name
    kit_dir = kit_directory(abi.kit, work)
    pyuwsgi = find_pyuwsgi_module(abi.kit, config.machine.uwsgi_timeout)
    if pyuwsgi:
        log(f"  a pyuwsgi build ({pyuwsgi.path}): each plugin's loader finds the running pyuwsgi")
    plugins = []
    loaders = {}
    for index, (source, name) in enumerate(zip(config.plugin_dirs, names)):
        plugin_work = work / f"plugin-{index}"
        plugins.append(build_plugin(abi, kit_dir, source, plugin_work, options, name, real_plugin_link_flags(abi, name),
                                    pyuwsgi))
        loaders[name] = compile_loader(abi, name, mismatch_fix(config), plugins[-1].shared_object, plugin_work / "loader",
                                       options.cache)
    from .needs import machine_needs  # late: pyelftools is imported while compiling (wheel/builder.py's warmup)

    glibc, python = machine_needs(abi, [plugin.shared_object for plugin in plugins], list(loaders.values()), pyuwsgi)
    return UwsgiBuild(abi=abi, plugins=plugins, pyuwsgi=pyuwsgi, loaders=loaders, glibc=glibc, python=python)


def plugin_names(settings: Settings, work: Path, kit_dir: Callable[[], Path | None]) -> list[str]:
    """Each plugin directory's NAME, compiling nothing; two alike are refused.
    ``kit_dir()`` gives a kit whose uwsgiconfig.py uwsgiplugin.py may import,
    asked for only when a NAME is not a plain string."""
    kit_dir = functools.cache(kit_dir)
    names = [
        plugin_name(source, work / f"check-{index}", work, settings.allow_outside_sources, settings.root.resolve(), kit_dir)
        for index, source in enumerate(settings.plugin_dirs)
    ]
    for name in set(names):
        if names.count(name) > 1:
            raise BackendError(f"two plugin directories both build a plugin named {name!r}; give each its own NAME")
    return names


def first_kit_dir(settings: Settings, work: Path) -> Callable[[], Path | None]:
    """The first target uwsgi's kit, for hooks that need none otherwise (metadata,
    sdist): None when no uwsgi is found, as those hooks must work without one."""
    from ..target_uwsgi.find import find_uwsgis

    def find() -> Path | None:
        try:
            chosen = find_uwsgis(settings.uwsgi, settings.uwsgi_origin, settings.uwsgi_base)
            return kit_directory(read_kit(chosen[0].path, settings.machine), work)
        except BackendError:
            return None

    return find


@contextlib.contextmanager
def build_root(build_dir: Path | None, lock_timeout: float) -> Iterator[Path]:
    """-C build-dir=PATH, kept for incremental rebuilds (one build at a time:
    another waits ``lock_timeout`` seconds at most); else a temporary directory."""
    if build_dir is None:
        with tempfile.TemporaryDirectory(prefix="uwsgi-plugin-backend-") as tmp:
            yield Path(tmp)
        return
    root = writable_directory(build_dir, f"cannot use -C build-dir={build_dir}", "name a writable directory")
    # One build at a time in a build directory; others wait (see locking.py).
    with locked(root / ".lock", f"the build directory {root}", lock_timeout):
        log(f"build directory {root} (kept: unchanged objects are reused)")
        yield root


def compile_plugins(settings: Settings, chosen: list[ChosenUwsgi], root: Path, kept: bool) -> list[UwsgiBuild]:
    """Build the project's plugins once per distinct ABI of the ``chosen`` binaries, in ``root``."""
    abis = distinct_abis(chosen, settings.abi_variants, root, settings.machine)
    options = BuildOptions(root=root, kept=kept, jobs=settings.jobs, strip=settings.strip, cache=settings.machine.cache_dir,
                           verbose=settings.verbose, allow_outside=settings.allow_outside_sources,
                           project=settings.root.resolve())
    # Checked before compiling: a missing declaration is known without a compiler.
    names = plugin_names(settings, root, lambda: kit_directory(abis[0].kit, root))
    check_entry_points(settings, names)
    builds = []
    for abi in abis:
        if abi.variant is None:
            builds.append(build_for(abi, settings, names, options))
            continue
        try:  # a variant is an extra: one the plugins cannot be built for is left out, saying why
            builds.append(build_for(abi, settings, names, options))
        except BackendError as error:
            log(f"  abi-variant {abi.variant.label} skipped: {_first_line(str(error))}")
    return builds


def _first_line(message: str) -> str:
    """A build error in one line: its first, and the compiler's first error when it quotes one."""
    lines = message.splitlines()
    error = next((line.strip() for line in lines[1:] if "error" in line), "")
    return lines[0].rstrip(":") + (f" ({error})" if error else "") if lines else message
