"""The ``uwsgi.plugins`` entry points a plugin project must declare (PEP 621:
the backend adds no metadata the author did not declare)."""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendError
from ..settings import ENTRY_POINT_GROUP as GROUP
from ..settings import Settings


def user_package_dir(root: Path, package: str) -> Path | None:
    """The project's own import ``package``, where scikit-build-core would find it below ``root``."""
    for base in ("src", "python", "."):
        candidate = root / base / package
        if (candidate / "__init__.py").is_file():
            return candidate
    return None


def check_entry_points(config: Settings, plugin_names: list[str]) -> None:
    """Fail, with the exact lines to add, unless every plugin has its entry point."""
    if "entry-points" in config.dynamic:
        return
    declared = config.entry_points
    missing = [name for name in plugin_names if name not in declared]
    strays = [name for name in declared if name not in plugin_names]
    if missing and strays:  # one mistake, the names disagree: say both at once
        lines = "\n".join(f'{name} = "{config.package}:plugin_dir"' for name in missing)
        header = f'[project.entry-points."{GROUP}"]'
        raise BackendError(
            f"the {GROUP!r} entry point{'s' if len(strays) > 1 else ''} {', '.join(strays)} in pyproject.toml "
            f"name{'' if len(strays) > 1 else 's'} no plugin: the plugin{'s' if len(missing) > 1 else ''} built here "
            f"{'are' if len(missing) > 1 else 'is'} called {', '.join(missing)} (NAME in uwsgiplugin.py), and "
            f"installed plugins are found by that name. Rename the entry point{'s' if len(strays) > 1 else ''}:\n\n"
            f"{header}\n{lines}\n\nor set NAME in uwsgiplugin.py to the entry point's name (the plugin's "
            "struct uwsgi_plugin is then NAME_plugin, and uwsgi loads it as --need-plugin NAME)"
        )
    if missing:
        lines = "\n".join(f'{name} = "{config.package}:plugin_dir"' for name in missing)
        header = f'[project.entry-points."{GROUP}"]'
        raise BackendError(
            f"pyproject.toml declares no {GROUP!r} entry point for the plugin(s) {', '.join(missing)}; "
            f"installed plugins are found through it. Add to pyproject.toml:\n\n{header}\n{lines}\n"
        )
    _check_targets(config, declared, plugin_names)
    own = user_package_dir(config.root, config.package)
    if own is None:
        return
    for name in plugin_names:
        if declared[name] == f"{config.package}:plugin_dir" and "plugin_dir" not in (own / "__init__.py").read_text():
            raise BackendError(
                f"entry point {name} = \"{config.package}:plugin_dir\" needs plugin_dir in your own "
                f"{own / '__init__.py'}; add the line\n\nfrom ._uwsgi_plugin import plugin_dir\n\n"
                f"or point the entry point at \"{config.package}._uwsgi_plugin:plugin_dir\""
            )


def _check_targets(config: Settings, declared: dict[str, str], plugin_names: list[str]) -> None:
    """Each entry point names a plugin of this wheel and points into the wheel's
    own package: anything else would fail only after installation."""
    for name, target in declared.items():
        if name not in plugin_names:
            raise BackendError(
                f"the {GROUP!r} entry point {name!r} matches no plugin: the plugins built here are named "
                f"{', '.join(plugin_names)} (NAME in uwsgiplugin.py); rename or remove the entry point"
            )
        module = str(target).split(":", 1)[0].strip()
        if module.split(".", 1)[0] != config.package:
            raise BackendError(
                f'entry point {name} = "{target}" points at module {module!r}, which the wheel does not have: '
                f'its package is {config.package}; write {name} = "{config.package}:plugin_dir"'
            )
