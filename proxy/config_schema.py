"""The config schema: every key the config file may hold, declared once, beside the value it fills.

A table of the config file is a frozen dataclass; each key is one field whose default is
`setting(...)`. The loader refuses a key no field declares (naming the file, the line, the key
and the nearest valid name), checks each value's type from the field's annotation and its range
from the `setting()` arguments, fills the defaults and hands the typed object down.

Adding a key to an existing table is one field::

    drain_seconds: float = setting(30.0, "how long SIGTERM waits for open requests", min=0)

Adding a table is a dataclass (kept beside the code that reads it, importing only this module)
and one field of `Config` in proxy/config.py::

    @dataclass(frozen=True)
    class GuardSettings:
        \"\"\"[guard]: spend limits.\"\"\"

        daily_usd: float | None = setting(None, "refuse requests past this spend a day", above=0)
        on_limit: str = setting("refuse", "what the limit does", choices=("refuse", "warn"))

    guard: GuardSettings = table(GuardSettings, "spend limits")   # in Config

after which `[guard]` is a known table and `config.guard.daily_usd` is typed.

Annotations the loader understands: `bool`, `int`, `float` (an integer is accepted), `str`,
`Path` (a string, `~` expanded), `X | None`, `tuple[X, ...]` (a TOML array), `Mapping[str, X]`
(a table whose keys the user chooses), another settings dataclass (a sub-table; in a tuple, an
array of tables) and `Any` (anything, unchecked). `setting()` arguments: the default (omit it for
a required key), one sentence of `doc`, `min`/`max` (inclusive), `above` (exclusive lower
bound), `choices`, `env` (an environment variable that wins over the file), `check` (a function
that returns an error sentence or None) and `secret` (the value never appears in an error).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from driftgate.proxy.errors import ConfigError

T = TypeVar("T")
SETTING = "driftgate.setting"
TABLE = "driftgate.table"


@dataclass(frozen=True)
class Setting:
    """What a key means and which values it accepts (beyond its annotated type)."""

    doc: str
    env: str | None = None
    min: float | None = None
    max: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None
    secret: bool = False


@dataclass(frozen=True)
class TableSpec:
    """A top-level table held by a field of Config."""

    cls: type[Any]
    doc: str
    as_mapping: bool = False  # hand down the checked table as written (for [watch])


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    env: str | None = None,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    choices: Iterable[str] = (),
    check: Callable[[Any], str | None] | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field that is a config key (see the module docstring)."""
    meta = {
        SETTING: Setting(doc, env, min, max, above, tuple(choices), check, secret),
    }
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, dict | list | set):  # a fresh copy each time, as dataclasses require
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def table(cls: type[Any], doc: str, *, as_mapping: bool = False) -> Any:
    """A Config field that is a top-level table, typed by the settings dataclass `cls`."""
    factory: Callable[[], Any] = dict if as_mapping else cls
    return field(default_factory=factory, metadata={TABLE: TableSpec(cls, doc, as_mapping)})


@dataclass(frozen=True)
class Key:
    """One declared key: its name, annotation and setting."""

    name: str
    hint: Any
    setting: Setting
    required: bool


_KEYS: dict[type[Any], dict[str, Key]] = {}


def keys_of(cls: type[Any]) -> dict[str, Key]:
    """The keys a settings dataclass declares, in declaration order."""
    if cls in _KEYS:
        return _KEYS[cls]
    hints = get_type_hints(cls)
    out: dict[str, Key] = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(SETTING)
        if isinstance(spec, Setting):
            required = f.default is MISSING and f.default_factory is MISSING
            out[f.name] = Key(f.name, hints[f.name], spec, required)
    _KEYS[cls] = out
    return out


def tables_of(cls: type[Any]) -> dict[str, TableSpec]:
    """The top-level tables a Config-like dataclass holds in its fields."""
    return {f.name: f.metadata[TABLE] for f in dataclasses.fields(cls) if TABLE in f.metadata}


class Source:
    """Where the values come from: the file (for messages and line numbers) and the environment."""

    def __init__(self, path: Path | None, text: str = "", env: Mapping[str, str] | None = None):
        self.path = path
        self.lines = text.splitlines()
        self.env: Mapping[str, str] = env or {}

    def where(self, table_path: str, key: str | None = None) -> str:
        """`file:line: [table] key`, the line when it can be found."""
        line = self.line_of(table_path, key)
        place = f"{self.path}:{line}" if line else f"{self.path}"
        if key is None:
            return f"{place}: [{table_path}]"
        return f"{place}: [{table_path}] {key}" if table_path else f"{place}: {key}"

    def line_of(self, table_path: str, key: str | None) -> int | None:
        """The line that sets `key` in `[table_path]` (best effort: TOML has many spellings)."""
        start = 0
        if table_path:
            header = re.compile(r"^\s*\[{1,2}\s*" + _dotted(table_path) + r"\s*\]{1,2}")
            for i, text in enumerate(self.lines):
                if header.match(text):
                    start = i
                    if key is None:
                        return i + 1
                    break
        if key is None:
            return None
        assign = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
        for i in range(start, len(self.lines)):
            if assign.match(self.lines[i]):
                return i + 1
        return None

    def error(self, table_path: str, key: str | None, sentence: str) -> ConfigError:
        """A ConfigError for a key of the file."""
        return ConfigError(f"{self.where(table_path, key)}: {sentence}")


def _dotted(table_path: str) -> str:
    parts = [p for p in re.split(r"\.(?![^\[]*\])", table_path) if p]
    return r"\s*\.\s*".join(r"[\"']?" + re.escape(p.split("[")[0]) + r"[\"']?" for p in parts)


def did_you_mean(word: str, known: Iterable[str], *, list_known: bool = True) -> str:
    """`; did you mean `port`?` for the nearest known name, else the known names (or nothing)."""
    names = sorted(known)
    # A shortened or lengthened name (`interval` for `interval_minutes`) first, then spelling.
    close = [n for n in names if len(word) >= 3 and (n.startswith(word) or word.startswith(n))]
    close = close or difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean `{close[0]}`?"
    return f" (known: {', '.join(names)})" if names and list_known else ""


def build(
    cls: type[T],
    raw: Any,
    table_path: str,
    source: Source,
    given: Mapping[str, Any] | None = None,
) -> T:
    """An instance of the settings dataclass `cls` from the TOML table `raw`, checked."""
    if not isinstance(raw, Mapping):
        raise source.error(table_path, None, f"must be a table, got {_show(raw)}")
    keys = keys_of(cls)
    for name in raw:
        if name not in keys:
            raise source.error(table_path, name, "unknown key" + did_you_mean(name, keys))
    values: dict[str, Any] = dict(given or {})
    for key in keys.values():
        env_name = key.setting.env
        if env_name and source.env.get(env_name):
            values[key.name] = from_env(key, env_name, source.env[env_name])
        elif key.name in raw:
            values[key.name] = check_value(
                key,
                raw[key.name],
                _failing(source, table_path, key.name),
                table_path=f"{table_path}.{key.name}" if table_path else key.name,
                source=source,
            )
        elif key.required and key.name not in values:
            raise source.error(table_path, None, f"missing key `{key.name}`: {key.setting.doc}")
    return cls(**values)


def _failing(source: Source, table_path: str, key: str) -> Callable[[str], ConfigError]:
    def fail(sentence: str) -> ConfigError:
        return source.error(table_path, key, sentence)

    return fail


def from_env(key: Key, env_name: str, text: str) -> Any:
    """A value from the environment variable `env_name`, converted to the key's type."""
    hint = _strip_optional(key.hint)
    try:
        value: Any = _from_text(hint, text)
    except ValueError:
        raise ConfigError(f"{env_name} must be {describe(hint)}, got {_show(text)}") from None
    return check_value(key, value, lambda s: ConfigError(f"{env_name}: {s}"))


def check_flag(cls: type[Any], name: str, value: Any) -> Any:
    """A command-line value for the key `name` of `cls`, checked like the file's."""
    flag = "--" + name.replace("_", "-")
    return check_value(keys_of(cls)[name], value, lambda s: ConfigError(f"{flag}: {s}"))


def _from_text(hint: Any, text: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    return text


def check_value(
    key: Key,
    value: Any,
    fail: Callable[[str], ConfigError],
    table_path: str = "",
    source: Source | None = None,
) -> Any:
    """`value` converted to the key's type and checked against its range; else `fail(sentence)`."""
    spec = key.setting
    shown = "(hidden)" if spec.secret else _show(value)
    converted = _convert(key.hint, value, fail, shown, table_path, source)
    if spec.choices and converted not in spec.choices:
        choices = ", ".join(f'"{c}"' for c in spec.choices)
        hint = did_you_mean(str(value), spec.choices, list_known=False)
        raise fail(f"must be one of {choices}, got {shown}{hint}")
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        if spec.min is not None and converted < spec.min:
            raise fail(f"must be at least {_num(spec.min)}, got {shown}")
        if spec.max is not None and converted > spec.max:
            raise fail(f"must be at most {_num(spec.max)}, got {shown}")
        if spec.above is not None and converted <= spec.above:
            raise fail(f"must be greater than {_num(spec.above)}, got {shown}")
    if spec.check is not None and converted is not None:
        problem = spec.check(converted)
        if problem:
            raise fail(problem)
    return converted


def _convert(
    hint: Any,
    value: Any,
    fail: Callable[[str], ConfigError],
    shown: str,
    table_path: str,
    source: Source | None,
) -> Any:
    hint = _strip_optional(hint)
    origin = get_origin(hint)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Path:
        if isinstance(value, Path) or (isinstance(value, str) and value):
            return Path(value).expanduser()
    elif origin is Literal:
        if value in get_args(hint):
            return value
        choices = ", ".join(f'"{c}"' for c in get_args(hint))
        raise fail(f"must be one of {choices}, got {shown}")
    elif origin is tuple:
        (item,) = [a for a in get_args(hint) if a is not Ellipsis]
        if isinstance(value, list):
            each = fail if dataclasses.is_dataclass(item) else _list_failure(hint, shown, fail)
            return tuple(_item(item, v, i, each, table_path, source) for i, v in enumerate(value))
    elif origin in (Mapping, dict) or hint is dict:
        args = get_args(hint)
        item = args[1] if args else Any
        if isinstance(value, Mapping):
            return {
                str(k): _convert(item, v, fail, _show(v), f"{table_path}.{k}", source)
                for k, v in value.items()
            }
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type) and source is not None:
        return build(hint, value, table_path, source)
    raise fail(f"must be {describe(hint)}, got {shown}")


def _item(
    item: Any,
    value: Any,
    index: int,
    fail: Callable[[str], ConfigError],
    table_path: str,
    source: Source | None,
) -> Any:
    if dataclasses.is_dataclass(item) and isinstance(item, type) and source is not None:
        return build(item, value, f"{table_path}[{index}]", source)
    return _convert(item, value, fail, _show(value), table_path, source)


def _list_failure(
    hint: Any, shown: str, fail: Callable[[str], ConfigError]
) -> Callable[[str], ConfigError]:
    """A failing item of a list of scalars is reported as the list's mistake."""

    def failing(_sentence: str) -> ConfigError:
        return fail(f"must be {describe(hint)}, got {shown}")

    return failing


def _strip_optional(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def describe(hint: Any) -> str:
    """The expected type in words, for errors and the key reference."""
    hint = _strip_optional(hint)
    origin = get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str:
        return 'a string in quotes, e.g. "text"'
    if hint is Path:
        return 'a path in quotes, e.g. "~/dir"'
    if origin is Literal:
        return "one of " + ", ".join(f'"{c}"' for c in get_args(hint))
    if origin is tuple:
        (item,) = [a for a in get_args(hint) if a is not Ellipsis]
        if item is str:
            return 'a list of strings, e.g. ["a", "b"]'
        if dataclasses.is_dataclass(item):
            return "a list of tables"
        return f"a list, each {describe(item)}"
    if origin in (Mapping, dict) or dataclasses.is_dataclass(hint):
        return "a table"
    return "a value"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 60 else f'"{value[:57]}..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
