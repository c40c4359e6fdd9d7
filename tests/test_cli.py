import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from scalelab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version():
    r = run("version")
    assert r.returncode == 0 and r.stdout.strip()


def test_unknown_command_is_a_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
