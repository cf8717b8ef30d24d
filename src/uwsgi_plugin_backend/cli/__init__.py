"""The command line: ``python -m uwsgi_plugin_backend`` / ``uwsgi-plugin-backend``.

    init [DIR] [--ci github]   make a plugin directory a project (writes pyproject.toml; the CI workflow)
    info [--uwsgi PATH] the uwsgi a build would use, why, its ABI, its cached kit
    list                the uWSGI plugins installed here, and whether they fit the uwsgi
    args [NAME ...]     --plugins-dir/--plugin arguments that load installed plugins
    ini [NAME ...]      the same as a [uwsgi] ini snippet
    merge WHEEL ... -o DIR   join wheels built for different uWSGI builds
    rebuild [DIR]       rebuild the plugins of an editable install (pip install -e)
    build-missing DIST [--uwsgi PATH] [--python PATH]   build an installed wheel's plugins for a uwsgi it has no build for
"""

from __future__ import annotations

import argparse
import shlex
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import BackendError, report
from ..plugin_build.entry_points import GROUP


def _init(args: argparse.Namespace) -> int:
    from .init import init

    init(Path(args.directory), args.ci)
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..settings import load_machine_settings, load_settings
    from ..target_uwsgi.abi import target_abi
    from ..target_uwsgi.find import find_uwsgis
    from ..target_uwsgi.kit_cache import kit_entry, read_kit

    names, origin, base = ([args.uwsgi], "--uwsgi", Path.cwd()) if args.uwsgi else ([], "", Path.cwd())
    machine = load_machine_settings()
    if not args.uwsgi and (Path.cwd() / "pyproject.toml").is_file():
        settings = load_settings(Path.cwd(), machine=machine)  # the project here says which uwsgi its builds use
        names, origin, base = list(settings.uwsgi), settings.uwsgi_origin, settings.uwsgi_base
    for chosen in find_uwsgis(names, origin, base):
        kit = read_kit(chosen.path, machine)
        print(f"uwsgi:      {chosen.path}")
        print(f"chosen:     {chosen.reason}")
        print(f"version:    {kit.version}")
        print(f"ABI key:    {target_abi(kit, machine.cache_dir).key}")
        print(f"summary:    {kit.abi_summary}")
        where = kit.directory or f"not cached ({kit_entry(chosen.path, machine)} is not writable)"
        print(f"kit cached: {where}")
    return 0


def _installed_plugins(names: list[str]) -> list:
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    unknown = [name for name in names if name not in found]
    if unknown:
        have = ", ".join(sorted(found)) or "none"
        raise BackendError(f"no installed uWSGI plugin named {', '.join(unknown)} (installed: {have})")
    return [found[name] for name in names] if names else sorted(found.values(), key=lambda ep: ep.name)


def _target_uwsgi(args: argparse.Namespace) -> str:
    from ..target_uwsgi.find import uwsgi_for_command

    return str(uwsgi_for_command(args.uwsgi).path)


def _load(ep, uwsgi: str) -> str:
    """The plugin directory an installed entry point reports for ``uwsgi``."""
    try:
        return ep.load()(uwsgi)
    except LookupError as error:  # the runtime module's NoMatchingBuild
        raise BackendError(str(error)) from None
    except Exception as error:  # a broken installed package must not hide the others
        dist = ep.dist.name if ep.dist else "?"
        raise BackendError(f"the uwsgi.plugins entry point {ep.name} = {ep.value} (of {dist}) is broken: {error!r}") from None


def _plugin_dirs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(directory, name) of each named (default: every) installed plugin, for the target uwsgi."""
    uwsgi = _target_uwsgi(args)
    pairs = [(_load(ep, uwsgi), ep.name) for ep in _installed_plugins(args.names)]
    if not pairs:
        raise BackendError("no uWSGI plugins are installed in this environment (entry point group uwsgi.plugins)")
    return pairs


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for directory, name in pairs:
        groups.setdefault(directory, []).append(name)
    return groups


def _args(args: argparse.Namespace) -> int:
    words = []
    for directory, names in _grouped(_plugin_dirs(args)).items():
        words += ["--plugins-dir", directory, "--need-plugin", ",".join(names)]
    print(" ".join(shlex.quote(word) for word in words))
    return 0


def _ini(args: argparse.Namespace) -> int:
    lines = ["[uwsgi]"]
    for directory, names in _grouped(_plugin_dirs(args)).items():
        lines += [f"plugins-dir = {directory}", f"need-plugin = {','.join(names)}"]
    print("\n".join(lines))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        uwsgi: str | None = _target_uwsgi(args)
    except BackendError:  # list shows the plugins all the same
        uwsgi = None
    rows = [("NAME", "DISTRIBUTION", "VERSION", "DIRECTORY", f"BUILD FOR {uwsgi or 'uwsgi (none found)'}")]
    for ep in _installed_plugins([]):
        directory, fits = "-", "no uwsgi to check"
        if uwsgi:
            try:
                directory, fits = _load(ep, uwsgi), "yes"
            except BackendError as error:
                fits = "no" if "has no build" in str(error) else f"broken: {error}"
        rows.append((ep.name, ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?", directory, fits))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def _merge(args: argparse.Namespace) -> int:
    from .merge import merge_wheels

    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise BackendError(f"-o {output} is an existing file; -o names the directory to write the merged wheel into "
                           "(created if missing): pass a directory, e.g. -o dist")
    print(merge_wheels([Path(w) for w in args.wheels], output))
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from ..wheel.editable import rebuild

    print(rebuild(Path(args.directory), args.build_dir))
    return 0


def _build_missing(args: argparse.Namespace) -> int:
    from .build_missing import build_missing

    print(build_missing(args.distribution, args.uwsgi, args.python))
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="uwsgi-plugin-backend",
        description="Build, ship and use uWSGI plugins as Python wheels (the build backend's tools).",
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run, help: str, description: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description or help)
        sub.set_defaults(run=run)
        return sub

    sub = command("init", _init, "make a plugin directory (with uwsgiplugin.py) a project: write its pyproject.toml")
    sub.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the plugin directory (default: .)")
    sub.add_argument("--ci", metavar="github", help="also write .github/workflows/wheels.yml, which builds one wheel per "
                     "platform for pip's uWSGI and pyuwsgi and publishes it to PyPI on a tag (keeps a pyproject.toml that exists)")
    sub = command("info", _info, "show the uwsgi a build here would use and why, its version, ABI key and cached kit")
    sub.add_argument("--uwsgi", metavar="PATH", help="ask about this uwsgi binary instead")
    sub = command("list", _list, "list the uWSGI plugins installed in this environment and whether they fit the uwsgi")
    sub.add_argument("--uwsgi", metavar="PATH", help="the uwsgi to check (default: the one beside this python, then PATH)")
    for name, run, what in (("args", _args, "uwsgi command-line arguments (one shell-quoted line)"),
                            ("ini", _ini, "a [uwsgi] ini snippet")):
        sub = command(name, run, f"print {what} that loads installed plugins into the uwsgi on PATH")
        sub.add_argument("names", nargs="*", metavar="NAME", help="plugins to load (default: all installed)")
        sub.add_argument("--uwsgi", metavar="PATH", help="the uwsgi that will load them (default: beside this python, then PATH)")
    sub = command("merge", _merge, "join wheels of one project version built for different uWSGI builds into one wheel",
                  "Join wheels of the same project version and tags, each built for other uWSGI builds "
                  "(e.g. one CI job per uWSGI version), into one wheel that carries every build.")
    sub.add_argument("wheels", nargs="+", metavar="WHEEL", help="the wheels to join")
    sub.add_argument("-o", "--output", required=True, metavar="DIR", help="where to write the merged wheel")
    sub = command("rebuild", _rebuild, "rebuild the plugins of an editable install (pip install -e) after a source change")
    sub.add_argument("directory", nargs="?", default=".", metavar="DIR", help="the project directory (default: .)")
    sub.add_argument("--build-dir", metavar="PATH", help="the -C build-dir the editable install was made with, if any")
    sub = command("build-missing", _build_missing,
                  "build an installed plugin wheel's plugins, from the sources it carries, for a uwsgi it has no build for",
                  "Build the plugins of an installed wheel for a uwsgi it carries no build for, from the sources "
                  "the wheel carries (no index, no network, no reinstall), where plugin_dir() finds them.")
    sub.add_argument("distribution", metavar="DIST", help="the installed distribution (e.g. uwsgi-plugin-hello)")
    sub.add_argument("--uwsgi", metavar="PATH", help="the uwsgi to build for (default: the one installed with the "
                     "Python that has the plugin, then PATH)")
    sub.add_argument("--python", metavar="PATH", help="the Python of the environment that has the plugin installed "
                     "(default: this one); for a backend installed as a tool of its own (uv tool, pipx)")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BackendError as error:
        report(error)
        return 1
