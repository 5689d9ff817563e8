"""Who may import whom (docs/architecture.md): the runtime never imports torch (`parley serve` must start on a
machine without it), and no server/ module imports one that imports it back."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import server

ROOT = Path(__file__).resolve().parents[1]


def test_server_modules_do_not_import_torch_or_training_code() -> None:
    names = [f"server.{m.name}" for m in pkgutil.iter_modules(server.__path__)]
    assert names, "server/ has no modules"
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'models', 'export'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"server/ imported: {out.stdout.strip()}"


def _server_imports() -> dict[str, set[str]]:
    """Each server/ module's imports of other server/ modules, those under TYPE_CHECKING or in functions included."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "server").glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                if node.module == "server":
                    names.update(a.name for a in node.names)
                elif node.module.startswith("server."):
                    names.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("server."))
        graph[path.stem] = names
    return graph


def test_no_server_module_imports_itself_back() -> None:
    graph = _server_imports()
    assert "service" in graph["session"] and {"deps", "session", "vosk"} <= graph["routes_stream"], graph

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen and m in graph:
                seen.add(m)
                todo.extend(graph[m])
        return seen

    circles = sorted(m for m in graph if m in reachable(m))
    assert not circles, f"modules reachable from themselves: { {m: sorted(graph[m] & set(circles)) for m in circles} }"
