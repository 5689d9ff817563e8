"""The runtime never imports torch: `parley serve` must start on a machine without it."""

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
