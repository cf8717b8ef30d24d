"""Every third-party module the backend imports is a declared dependency, with
the marker under which it is imported."""

from __future__ import annotations

import ast
import importlib.util
import sys

from conftest import REPO
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SRC = REPO / "src" / "uwsgi_plugin_backend"
# Import name -> distribution, where they differ.
DISTRIBUTIONS = {"elftools": "pyelftools", "packaging": "packaging"}


def in_standard_library(module: str) -> bool:
    """Part of Python itself (sys.stdlib_module_names is 3.10+): found, and not in site-packages."""
    spec = importlib.util.find_spec(module)
    return spec is not None and "site-packages" not in (spec.origin or "")


def imported_modules() -> dict[str, bool]:
    """Top-level third-party modules imported by the backend -> imported only
    under `sys.version_info < (3, 11)` (as tomli is)."""
    found: dict[str, bool] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        old_python_only: set[int] = set()
        new_python_only: set[int] = set()  # the standard library there (tomllib)
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
                old_python_only.update(id(n) for branch in node.orelse for n in ast.walk(branch))
                new_python_only.update(id(n) for branch in node.body for n in ast.walk(branch))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ("uwsgi_plugin_backend", "__future__") or id(node) in new_python_only or in_standard_library(top):
                    continue
                found[top] = found.get(top, True) and id(node) in old_python_only
    return found


def test_every_imported_distribution_is_declared():
    declared = {
        Requirement(text).name.lower(): Requirement(text)
        for text in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    modules = imported_modules()
    assert "tomli" in modules and "scikit_build_core" in modules
    for module, old_python_only in modules.items():
        distribution = DISTRIBUTIONS.get(module, module).replace("_", "-").lower()
        assert distribution in declared, f"{module} is imported but {distribution} is not a dependency"
        marker = declared[distribution].marker
        if old_python_only:
            assert marker is not None and marker.evaluate({"python_version": "3.10"}), module
            assert not marker.evaluate({"python_version": "3.11"}), module
