"""``uwsgi-plugin-backend init DIR [--ci github]``: make a plugin directory a
project (pyproject.toml, README.md), and with ``--ci github`` the workflow that
builds, merges and publishes its wheels (.github/workflows/wheels.yml)."""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from pathlib import Path

from ..errors import BackendError

PYPROJECT_TEMPLATE = """\
[build-system]
requires = ["uwsgi-plugin-backend"]
build-backend = "uwsgi_plugin_backend"

[project]
name = "{distribution}"
version = "0.1.0"
description = "The {name} uWSGI plugin"
readme = "README.md"
requires-python = ">=3.9"

[project.entry-points."uwsgi.plugins"]
{name} = "{package}:plugin_dir"
"""

README_TEMPLATE = """\
# {distribution}

The `{name}` uWSGI plugin, built into a wheel by uwsgi-plugin-backend.

```sh
pip install {distribution}
uwsgi --plugins-dir "$(python -m {package})" --need-plugin {name} ...
```
"""

WORKFLOW = Path(".github", "workflows", "wheels.yml")
CI_SYSTEMS = {"github": Path(__file__).with_name("wheels.yml")}


def _refuse_link(target: Path) -> None:
    if target.is_symlink() and not target.exists():
        raise BackendError(f"{target} is a symbolic link to {os.readlink(target)}, which does not exist; init writes "
                           "a new file only, never through a link: remove the link and run init again")


def _check_workflow(target: Path) -> None:
    """The workflow is written new, in directories that are directories, or not at all."""
    _refuse_link(target)
    if target.exists():
        raise BackendError(f"{target} already exists; init writes a new one only: rename yours and run init again "
                           "to compare the two")
    for parent in (target.parent.parent, target.parent):
        if parent.exists() and not parent.is_dir():
            raise BackendError(f"{parent} is a file; init writes the workflow into the directory {target.parent}: "
                               "move the file away and run init again")


def _write_new(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": a new file or none, never one written through a link that appeared after the checks.
        with target.open("x") as f:
            f.write(text)
    except OSError as error:
        raise BackendError(f"cannot write {target}: {error.strerror or error}; init writes into the plugin "
                           "directory: make it writable, or run init where you can write") from None


def init(directory: Path, ci: str | None) -> None:
    """Write the project files that are missing; refuse, before writing anything,
    a pyproject.toml that exists (unless only the workflow is asked for) and a
    workflow that exists."""
    from ..plugin_build.plugin import plugin_name
    from ..settings import default_package

    if ci is not None and ci not in CI_SYSTEMS:
        raise BackendError(f"--ci {ci}: init writes a workflow for GitHub Actions only; pass --ci github")
    if not (directory / "uwsgiplugin.py").is_file():
        raise BackendError(f"{directory} has no uwsgiplugin.py; init turns a uWSGI plugin directory into a project")
    pyproject = directory / "pyproject.toml"
    _refuse_link(pyproject)
    # A project that has its pyproject.toml may still ask for the workflow.
    keep_pyproject = pyproject.exists() and ci is not None
    if pyproject.exists() and not keep_pyproject:
        raise BackendError(f"{pyproject} already exists; init writes a new one only (add the lines from the README to "
                           "yours; init DIR --ci github adds only the workflow)")
    workflow = directory / WORKFLOW
    if ci is not None:
        _check_workflow(workflow)
    if not keep_pyproject:  # the plugin's NAME first: a uwsgiplugin.py that fails leaves nothing written
        with tempfile.TemporaryDirectory() as tmp:
            name = plugin_name(directory.absolute(), Path(tmp), Path(tmp))
        distribution = f"uwsgi-plugin-{name.replace('_', '-')}".lower()
        package = default_package(distribution)  # the package the build derives from the project name
    if ci is not None:
        _write_new(workflow, CI_SYSTEMS[ci].read_text())
        print(f"wrote {workflow}: GitHub Actions builds one wheel per platform and the sdist; on a tag v* it "
              "publishes them to PyPI, once PyPI has this repository as a trusted publisher (workflow wheels.yml, "
              "environment pypi). GitHub reads it at the root of the repository.")
    if keep_pyproject:
        print(f"kept {pyproject}")
        return
    _write_new(pyproject, PYPROJECT_TEMPLATE.format(distribution=distribution, name=name, package=package))
    with contextlib.suppress(FileExistsError), (directory / "README.md").open("x") as f:  # the user's own, or their link
        f.write(README_TEMPLATE.format(distribution=distribution, name=name, package=package))
    print(f"wrote {pyproject}: distribution {distribution}, import package {package}, entry point {name}")
    # A bare name would make pip look on the index (`pip install fresh` installs PyPI's "fresh"): give a path.
    where = shlex.quote(str(directory) if os.sep in str(directory) else f".{os.sep}{directory}")
    print(f"next: pip install {where}   then: uwsgi --plugins-dir \"$(python -m {package})\" --need-plugin {name}")
