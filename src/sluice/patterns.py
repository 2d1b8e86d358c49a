"""Key patterns, matched in linear time whatever the pattern and the key.

A feed's pattern is matched against every key of its source. With a backtracking engine, a
pattern such as ``(a+)+b`` takes exponential time on a key of a few dozen characters and hangs
the run; RE2 (``google-re2``) matches in time linear in the key, always. RE2 accepts Python's
syntax except backreferences and lookaround, which a pattern of keys never needs: a pattern
using them is refused when the configuration is read, naming it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

from sluice.errors import ConfigError

_OPTIONS = re2.Options()
# An invalid pattern is reported as a ConfigError; the engine must not log it on its own.
_OPTIONS.log_errors = False


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern; ConfigError if it is not a valid linear-time pattern."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConfigError(
            f"pattern {pattern!r} is not valid: {reason} (patterns are matched in linear time; "
            "backreferences and lookaround are not supported)"
        ) from None


def fullmatch(pattern: str, key: str) -> bool:
    """Whether `pattern` matches all of `key`."""
    return compile_pattern(pattern).fullmatch(key) is not None
