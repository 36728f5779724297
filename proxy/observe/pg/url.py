"""The analytics database URL: checked in the config, shown only with its password masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
MASK = "***"


def url_problem(value: str | None) -> str | None:
    """Why a database_url is not usable (for the config schema), or None."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES:
        return 'must be a URL such as "postgresql://user:password@host:5432/dbname"'
    return None


def redact_url(value: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) masked."""
    parts = urlsplit(value)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if "password" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(value: str | None) -> list[str]:
    """The credentials a URL holds (for the log redactor)."""
    if not value:
        return []
    parts = urlsplit(value)
    found = [parts.password, unquote(parts.password)] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


def reason(exc: BaseException) -> str:
    """The first line of an error (libpq's messages run on with hints and a caret line)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
