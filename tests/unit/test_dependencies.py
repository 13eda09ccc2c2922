"""Every third-party package the server imports is a dependency of the
project, not only of its tests: the image installs the project alone. The
reference client's are its `client` extra; the benchmark's load generator's,
the dev extra's."""

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# What the load generator's process imports: the bench package but the servers it starts.
LOADGEN = [p for p in (ROOT / "chat" / "management" / "bench").glob("*.py") if p.stem != "servers"]


def imported_modules(paths: list[Path]) -> set[str]:
    modules = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"chat", "chatsite", "chat_client"}


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


def undeclared(modules: set[str], *, extras: tuple[str, ...] = ()) -> dict:
    """Of these top-level modules, those that neither the project's
    dependencies nor these extras install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"]]
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    declared = installed_with({name_of(spec) for spec in specs})
    distributions = packages_distributions()
    return {
        module: distributions.get(module)
        for module in modules
        if not {normalized(d) for d in distributions.get(module, [module])} & declared
    }


def test_the_server_imports_only_its_own_dependencies():
    server = [*ROOT.joinpath("chat").rglob("*.py"), *ROOT.joinpath("chatsite").rglob("*.py")]
    # The benchmark's server choice is optional, and imported only when asked.
    modules = imported_modules([p for p in server if p not in LOADGEN]) - {"uvicorn"}
    assert undeclared(modules) == {}


def test_the_client_and_the_load_generator_need_only_their_extras():
    client = imported_modules(list(ROOT.joinpath("chat_client").rglob("*.py")))
    assert "websockets" in client
    assert undeclared(client, extras=("client",)) == {}
    assert undeclared(imported_modules(LOADGEN), extras=("dev",)) == {}
