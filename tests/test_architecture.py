"""The package's shape (ARCHITECTURE.md): imports point one way, down the flow
cli / hooks -> wheel -> plugin_build -> target_uwsgi -> settings -> core ->
runtime; the backend reaches the runtime module through runtime_api.py alone;
the runtime module is standard library only and runs on Python 3.9."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "uwsgi_plugin_backend"
# Lower numbers sit lower: a module imports its own part, or parts below it.
LAYERS = {
    "runtime": 0,
    "_version": 1, "errors": 1, "runtime_api": 1, "cache": 1, "locking": 1,
    "settings": 2,
    "target_uwsgi": 3,
    "plugin_build": 4,
    "wheel": 5,
    "cli": 6, "__init__": 6,
    "__main__": 7,
}
CORE = {"errors", "runtime_api", "cache", "locking", "_version"}


def part_of(module: str) -> str:
    """``wheel.builder`` -> ``wheel``; a core module is its own part."""
    return module.split(".")[0]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every import of this package, at any depth of the file."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:  # from . import x: x is a module of that package
                found += [(".".join([*base, alias.name]) or "__init__", [], node.lineno) for alias in node.names]
            else:
                found.append((target or "__init__", [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.startswith("uwsgi_plugin_backend"):
                    found.append((name.removeprefix("uwsgi_plugin_backend").lstrip(".") or "__init__", [], node.lineno))
    return found


def test_imports_point_down_the_flow():
    wrong = []
    for module, path in modules().items():
        here = part_of(module)
        for target, _, line in imports(module, path):
            there = part_of(target)
            if there == here and here not in CORE:
                continue  # within one part
            if LAYERS[there] >= LAYERS[here] and not (here in CORE and there in CORE and LAYERS[there] <= LAYERS[here]):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {target} ({there} is not below {here})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {module: {target for target, _, _ in imports(module, path)} for module, path in modules().items()}
    graph = {module: {t for t in targets if t in graph and t != module} for module, targets in graph.items()}
    visiting, done, circles = set(), set(), []

    def visit(module: str, trail: list[str]) -> None:
        if module in done:
            return
        if module in visiting:
            circles.append(" -> ".join([*trail[trail.index(module):], module]))
            return
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, circles


def test_the_runtime_module_is_reached_through_runtime_api_alone():
    from uwsgi_plugin_backend.runtime import _uwsgi_plugin as runtime

    offered = set(runtime.__all__)
    for module, path in modules().items():
        for target, names, line in imports(module, path):
            if target == "runtime._uwsgi_plugin":
                assert module == "runtime_api", f"{path.relative_to(PACKAGE)}:{line} imports the runtime module directly"
                assert set(names) <= offered, set(names) - offered
    assert set(runtime.BACKEND_API) & set(runtime.RUNTIME_API) == set()


def test_the_runtime_module_is_standard_library_only_and_runs_on_python_3_9():
    source = PACKAGE / "runtime" / "_uwsgi_plugin.py"
    tree = ast.parse(source.read_text(), feature_version=(3, 9))
    top_level = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            top_level.add((node.module or "").split(".")[0])
    stdlib = set(getattr(sys, "stdlib_module_names", ()))  # Python 3.10 and later
    if stdlib:
        assert top_level - {"__future__"} <= stdlib, top_level - stdlib
    # Isolated (-I) and without site-packages (-S): what a wheel's python -m PACKAGE has at least.
    result = subprocess.run([sys.executable, "-I", "-S", "-c",
                             "import importlib.util, sys; spec = importlib.util.spec_from_file_location('m', sys.argv[1]);"
                             " m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.KEY_FORMAT)",
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("a")


def test_the_compiler_driver_is_standard_library_only():
    """plugin_build/_driver.py runs as a script beside the kit's uwsgiconfig.py
    (python _driver.py REQUEST_JSON), where the backend is not importable."""
    source = PACKAGE / "plugin_build" / "_driver.py"
    found = imports("plugin_build._driver", source)
    assert not found, found
    top_level = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"_driver.py:{node.lineno} imports relatively"
            top_level.add((node.module or "").split(".")[0])
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    if stdlib:
        assert top_level - {"__future__"} <= stdlib, top_level - stdlib
    result = subprocess.run([sys.executable, "-I", "-S", "-c",
                             "import importlib.util, sys; spec = importlib.util.spec_from_file_location('d', sys.argv[1]);"
                             " m = importlib.util.module_from_spec(spec); sys.modules['d'] = m; spec.loader.exec_module(m);"
                             " print(m.DriverRequest('check', '.', '.', 'r.json').mode)",
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "check"
