"""Run a command as a child process and measure it: wall time, exit code, peak RSS.

The child is reaped with ``os.wait4``, whose resource usage is that of this child alone (and of
its own waited-for children), so ``ru_maxrss`` is the peak resident set of the measured command,
not of the harness.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# ru_maxrss is in kilobytes on Linux, in bytes on macOS.
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class ChildResult:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    wall_seconds: float
    peak_rss_bytes: int
    log: Path

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / (1 << 20)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def run_measured(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> ChildResult:
    """Run `args`, collecting stdout in memory and stderr in `log`."""
    with log.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(args), stdout=subprocess.PIPE, stderr=err, env=dict(env), cwd=cwd
        )
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return ChildResult(
        args=tuple(args),
        returncode=proc.returncode,
        stdout=out,
        wall_seconds=wall,
        peak_rss_bytes=usage.ru_maxrss * _RSS_UNIT,
        log=log,
    )
