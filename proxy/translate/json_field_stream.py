"""The text of one string field, decoded while its JSON object arrives in fragments."""

from __future__ import annotations

import re

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class StringFieldStream:
    """Feed fragments of `{"<field>": "..."}`; get back the field's newly decoded characters.

    A custom tool's free-form input reaches a non-Responses model as one string field of a JSON
    object; its stream must reach the client as plain text deltas, not JSON.
    """

    __slots__ = ("_buf", "_done", "_key", "_pos", "_started")

    def __init__(self, field: str) -> None:
        self._key = re.compile(r'"' + re.escape(field) + r'"\s*:\s*"')
        self._buf = ""
        self._pos = 0  # next undecoded character of the value, once started
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """The value's closing quote has arrived."""
        return self._done

    def feed(self, fragment: str) -> str:
        """The characters of the value that `fragment` completes (escapes decoded)."""
        if self._done:
            return ""
        self._buf += fragment
        if not self._started:
            m = self._key.search(self._buf)
            if m is None:
                return ""
            self._started, self._pos = True, m.end()
        out: list[str] = []
        buf, i, n = self._buf, self._pos, len(self._buf)
        while i < n:
            c = buf[i]
            if c == '"':
                self._done = True
                i += 1
                break
            if c != "\\":
                j = i
                while j < n and buf[j] not in '"\\':
                    j += 1
                out.append(buf[i:j])
                i = j
                continue
            if i + 1 >= n:
                break  # the escape's second half has not arrived
            e = buf[i + 1]
            if e != "u":
                out.append(_ESCAPES.get(e, e))
                i += 2
                continue
            if i + 6 > n:
                break
            code = int(buf[i + 2 : i + 6], 16)
            if 0xD800 <= code < 0xDC00:  # a surrogate pair: wait for its low half
                if i + 12 > n:
                    break
                low = int(buf[i + 8 : i + 12], 16)
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                i += 12
                continue
            out.append(chr(code))
            i += 6
        self._pos = i
        if i > 4096:  # keep the buffer short on long inputs
            self._buf, self._pos = self._buf[i:], 0
        return "".join(out)
