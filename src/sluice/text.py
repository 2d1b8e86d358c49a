"""Untrusted text in messages: keys, values and names shown with what cannot be seen escaped.

An object key or a field can hold tabs, newlines, NULs, byte-order marks or bidirectional
controls; quoted as they are, they break log lines, hide part of a message or make two
different names look the same. `visible` shows each such character as its escape (``\\t``,
``\\n``, ``\\x00``, ``\\ufeff``) and leaves every other character as it is.
"""

from __future__ import annotations

import re
import unicodedata

#: Unicode categories of characters that show nothing: controls, formats (byte-order mark,
#: zero-width and bidirectional marks), surrogates, unassigned, line and paragraph separators.
_INVISIBLE = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def visible(text: str) -> str:
    """`text` with every invisible character escaped (and backslashes doubled, so that an
    escape in the output always means an escaped character)."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_show(ch) for ch in text)


def _show(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    if unicodedata.category(ch) not in _INVISIBLE:
        return ch
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def has_control(text: str) -> bool:
    """Whether `text` holds a control character (tab, newline, carriage return, NUL ...)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s\"']*):[^@\s\"']*@")
_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact_secrets(text: str) -> str:
    """`text` with the passwords of URLs (``scheme://user:secret@host``) and of connection
    strings (``password=secret``) replaced by ``***``: for every message, log line and ledger
    row that might quote a URL."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group(1)}***", masked)
