#!/usr/bin/env python3
"""Project tasks. Needs nothing but Python 3.11+: the first task creates ``.venv`` and installs
the pinned dependencies from the lock files into it.

    python3 tasks.py demo            # quick start: sample GLAM bucket → embedded PostgreSQL
    python3 tasks.py test [ARGS]     # the whole test suite (ARGS go to pytest)
    python3 tasks.py lint            # ruff + mypy (strict) + CLI reference up to date
    python3 tasks.py bench ARGS      # python -m bench ARGS, e.g. bench glam --rows 1000000
    python3 tasks.py docs            # regenerate docs/cli.md from --help
    python3 tasks.py lock            # re-pin requirements*.lock from pyproject.toml
    python3 tasks.py sluice ARGS     # run the sluice CLI from the virtual environment
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PY = BIN / "python"
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".installed"


def run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def check(*args: str | Path) -> None:
    code = run(*args)
    if code:
        sys.exit(code)


def ensure_venv() -> None:
    """Create .venv and install the locked dependencies, again whenever the lock changes."""
    wanted = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PY.exists():
        return
    if not PY.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing locked dependencies into .venv", flush=True)
    pip = [PY, "-m", "pip", "--disable-pip-version-check", "-q"]
    check(*pip, "install", "--require-hashes", "--no-deps", "-r", LOCK)
    check(*pip, "install", "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(wanted)


def postgres_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_env() -> dict[str, str]:
    """Use the machine's PostgreSQL when one answers on 127.0.0.1:5432 (trust auth), else the
    tests start the embedded server themselves."""
    env = dict(os.environ)
    if not env.get("SLUICE_TEST_DATABASE_URL") and postgres_answers():
        env["SLUICE_TEST_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/postgres"
    return env


def main(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return
    task, rest = argv[0], argv[1:]
    ensure_venv()
    if task == "demo":
        sys.exit(run(BIN / "sluice", "demo", *rest))
    if task == "test":
        sys.exit(run(PY, "-m", "pytest", *rest, env=test_env()))
    if task == "lint":
        check(BIN / "ruff", "check", "src", "tests", "bench", "tasks.py")
        check(BIN / "ruff", "format", "--check", "src", "tests", "bench", "tasks.py")
        check(BIN / "mypy")
        check(PY, "-m", "sluice.docs", "--check")
        return
    if task == "docs":
        check(PY, "-m", "sluice.docs")
        return
    if task == "bench":
        sys.exit(run(PY, "-m", "bench", *rest))
    if task == "sluice":
        sys.exit(run(BIN / "sluice", *rest))
    if task == "lock":
        check(PY, "-m", "pip", "install", "-q", "uv")
        common = ["--generate-hashes", "--python-version", "3.11", "--universal", "-q"]
        check(BIN / "uv", "pip", "compile", "pyproject.toml", "-o", "requirements.lock", *common)
        check(
            BIN / "uv",
            "pip",
            "compile",
            "pyproject.toml",
            "--extra",
            "dev",
            "-o",
            "requirements-dev.lock",
            *common,
        )
        return
    sys.exit(f"unknown task {task!r}; see python3 tasks.py --help")


if __name__ == "__main__":
    main(sys.argv[1:])
