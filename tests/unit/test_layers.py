"""No import cycles: every module of the server, the client and the page can
be read (and loaded) after the modules it imports. A cycle put back is
found (the last tests plant one)."""

import re
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
# `import { x } from "./y.js"`, `import "./y.js"`, over one line or several.
JS_IMPORT = re.compile(
    r"""^\s*import\s+(?:[^'";]*?\s+from\s+)?["']\./([\w.-]+\.js)["']""", re.M | re.S
)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def python_graph(package: str) -> dict[str, set[str]]:
    graph = grimp.build_graph(package, cache_dir=None)
    return {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}


def js_graph(folder: Path) -> dict[str, set[str]]:
    return {path.name: set(JS_IMPORT.findall(path.read_text())) for path in folder.glob("*.js")}


def test_the_server_has_no_import_cycles():
    assert cycles(python_graph("chat")) == []


def test_the_client_has_no_import_cycles():
    assert cycles(python_graph("chat_client")) == []


def test_the_page_has_no_import_cycles_and_nothing_imports_main():
    graph = js_graph(ROOT / "static" / "chat")
    assert len(graph) > 10 and graph["main.js"], "the page's modules were read"
    assert cycles(graph) == []
    assert [name for name, imported in graph.items() if "main.js" in imported] == []


def test_a_javascript_cycle_put_back_is_found(tmp_path):
    (tmp_path / "main.js").write_text('import "./room.js";\n')
    (tmp_path / "room.js").write_text('import {\n  follow,\n} from "./live.js";\n')
    (tmp_path / "live.js").write_text('import { openRoom } from "./room.js";\n')
    assert cycles(js_graph(tmp_path)) == [["live.js", "room.js"]]


def test_a_python_cycle_put_back_is_found(tmp_path, monkeypatch):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text("from cyclic import realtime\n")
    (package / "realtime.py").write_text("from cyclic.services import x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(python_graph("cyclic")) == [["cyclic.realtime", "cyclic.services"]]
    sys.modules.pop("cyclic", None)
