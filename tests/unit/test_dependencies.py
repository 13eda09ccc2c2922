"""Every third-party package the server imports is a dependency of the
project, not only of its tests: the image installs the project alone."""

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules() -> set[str]:
    modules = set()
    for path in [*ROOT.joinpath("chat").rglob("*.py"), *ROOT.joinpath("chatsite").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"chat", "chatsite"}


def normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def name_of(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))


def installed_with(names: set[str]) -> set[str]:
    """These distributions and everything they require (their extras aside)."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            requirements = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [name_of(r) for r in requirements if "extra ==" not in r]
    return found


def test_the_server_imports_only_its_own_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = installed_with({name_of(spec) for spec in project["dependencies"]})
    distributions = packages_distributions()
    # The benchmark's server choice and the profiler are optional, and imported only when asked.
    optional = {"uvicorn"}
    missing = {
        module: distributions.get(module)
        for module in imported_modules() - optional
        if not {normalized(d) for d in distributions.get(module, [module])} & declared
    }
    assert missing == {}
