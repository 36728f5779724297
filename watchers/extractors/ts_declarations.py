"""Just enough of TypeScript declaration files (.d.ts) to read unions of literals and object types.

Not a parser: a tokenizer that knows comments, string literals and bracket depth, which is what
generated .d.ts files (tsc, Stainless, json-schema-to-typescript) need to be read reliably.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(
    r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`|/\*.*?(?:\*/|\Z)|//[^\n]*""",
    re.S,
)
_STRING = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`""", re.S)
_MEMBER = re.compile(
    r"""\s*(?:readonly\s+)?(?:(['"])(?P<q>[^'"]+)\1|(?P<n>[A-Za-z_$][\w$]*))\s*\??\s*:"""
)
_OBJECT_DECL = re.compile(
    r"(?:^|[;\s}])(?:export\s+)?(?:declare\s+)?(?P<kw>interface|type)\s+(?P<name>[A-Za-z_$][\w$]*)"
)


def strip_comments(src: str) -> str:
    """`src` with block and line comments blanked out; string literals kept intact."""

    def keep_strings(m: re.Match[str]) -> str:
        tok = m.group(0)
        return tok if tok[0] in "'\"`" else " "

    return _TOKENS.sub(keep_strings, src)


def _skip_string(text: str, i: int) -> int:
    m = _STRING.match(text, i)
    return m.end() if m else i + 1


def scan_to(text: str, start: int, stops: str = "") -> int:
    """Index of the first char in `stops` at bracket depth 0, or of the bracket closing the level."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            i = _skip_string(text, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return i
        elif depth == 0 and c in stops:
            return i
        i += 1
    return n


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def type_alias_body(src: str, name: str) -> str | None:
    """The text after `type <name> =` up to its closing `;` (comments already stripped), or None."""
    m = re.search(
        rf"(?:^|[;\s}}])(?:export\s+)?(?:declare\s+)?type\s+{re.escape(name)}\s*(?:<[^;{{}}]*?>)?\s*=",
        src,
    )
    if m is None:
        return None
    end = scan_to(src, m.end(), ";")
    return src[m.end() : end]


def union_literals(src: str, name: str) -> list[str] | None:
    """The string literals of the union `type <name> = 'a' | 'b' | ...`, deduplicated, in order.

    None when the type is not declared; [] when it is declared but holds no literal.
    """
    body = type_alias_body(src, name)
    if body is None:
        return None
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(body):
        c = body[i]
        if c in "'\"`":
            end = _skip_string(body, i)
            if depth == 0 and c != "`":
                lit = _unquote(body[i:end])
                if lit and lit not in out:
                    out.append(lit)
            i = end
            continue
        if c in "([{<":
            depth += 1
        elif c in ")]}" or (c == ">" and body[i - 1] != "="):
            depth -= 1
        i += 1
    return out


def member_names(body: str) -> list[str]:
    """Property names declared at the top level of an object type body (between its braces)."""
    names: list[str] = []
    i = 0
    while i < len(body):
        m = _MEMBER.match(body, i)
        if m:
            name = m.group("q") or m.group("n")
            if name not in names:
                names.append(name)
        end = scan_to(body, i, ";,\n")
        i = end + 1
    return names


def _body_start(src: str, i: int) -> int:
    """Index of the `{` opening an interface body, skipping type arguments in its header."""
    angle = 0
    while i < len(src):
        c = src[i]
        if c in "'\"`":
            i = _skip_string(src, i)
            continue
        if c == "<":
            angle += 1
        elif c == ">" and src[i - 1] != "=":
            angle -= 1
        elif c == "{" and angle <= 0:
            return i
        elif c == "{":
            i = scan_to(src, i + 1) + 1
            continue
        elif c == ";":
            return -1
        i += 1
    return -1


def _object_bodies(text: str) -> list[str]:
    """Bodies of the `{...}` object types at the top level of a type expression."""
    bodies: list[str] = []
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c in "'\"`":
            i = _skip_string(text, i)
            continue
        if c == "{" and depth == 0:
            end = scan_to(text, i + 1)
            bodies.append(text[i + 1 : end])
            i = end + 1
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        i += 1
    return bodies


def object_types(src: str, name_suffix: str) -> dict[str, list[str]]:
    """Interfaces and object type aliases whose name ends with `name_suffix` -> their field names.

    A type alias that is a union or intersection of object literals gets the fields of all of them;
    one that is no object literal at all gets an empty list. `src` must be comment-stripped.
    """
    found: dict[str, list[str]] = {}
    for m in _OBJECT_DECL.finditer(src):
        name = m.group("name")
        if not name.endswith(name_suffix) or name in found:
            continue
        if m.group("kw") == "interface":
            brace = _body_start(src, m.end())
            if brace < 0:
                continue
            found[name] = member_names(src[brace + 1 : scan_to(src, brace + 1)])
        else:
            body = type_alias_body(src, name)
            if body is None:
                continue
            fields: list[str] = []
            for obj in _object_bodies(body):
                fields.extend(f for f in member_names(obj) if f not in fields)
            found[name] = fields
    return found
