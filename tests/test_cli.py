import subprocess
import sys

from parley.cli import COMMANDS, main


def test_help_lists_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_refused() -> None:
    r = subprocess.run([sys.executable, "-m", "parley.cli", "fly"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_every_command_has_help() -> None:
    for name in COMMANDS:
        r = subprocess.run([sys.executable, "-m", "parley.cli", name, "--help"], capture_output=True, text=True)
        assert r.returncode == 0, f"parley {name} --help failed: {r.stderr[-500:]}"
        assert "usage" in r.stdout.lower(), f"parley {name} --help printed no usage"


def test_serve_without_bundles_says_so(tmp_path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "parley.cli", "serve", "--bundles", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no model yet" in r.stderr
