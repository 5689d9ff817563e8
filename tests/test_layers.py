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


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """The modules from which an import path leads back to themselves."""

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen and m in graph:
                seen.add(m)
                todo.extend(graph[m])
        return seen

    return sorted(m for m in graph if m in reachable(m))


def test_no_server_module_imports_itself_back() -> None:
    graph = _server_imports()
    assert "service" in graph["session"] and {"deps", "session", "vosk"} <= graph["routes_stream"], graph

    circles = _circles(graph)
    assert not circles, f"modules reachable from themselves: { {m: sorted(graph[m] & set(circles)) for m in circles} }"


def _all_imports() -> dict[str, set[str]]:
    """Every Parley module (parley, server, models, export, clients) and the Parley modules it imports, at module
    level, under TYPE_CHECKING or inside functions."""
    files = {}
    for top in ("parley", "server", "models", "export", "clients"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                    )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != name and not name.startswith(t + "."):
                    deps.add(t)
        graph[name] = deps
    return graph


def test_no_module_anywhere_imports_itself_back() -> None:
    graph = _all_imports()
    assert "models.data.engines" in graph and "parley.contract" in graph["server.recognizer"], sorted(graph)[:5]

    circles = _circles(graph)
    assert not circles, f"modules reachable from themselves: { {m: sorted(graph[m] & set(circles)) for m in circles} }"
    assert not any(
        d.startswith(("server", "models", "export", "clients"))
        for d in set().union(*(graph[m] for m in graph if m.startswith("parley.") and m != "parley.cli"))
    ), "parley/ imports only itself"
