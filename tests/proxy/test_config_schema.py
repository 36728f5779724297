"""The schema machinery on a table of its own: how another part of driftgate declares its keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from driftgate.proxy.config_schema import Source, build, describe, keys_of, setting
from driftgate.proxy.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """A sub-table entry."""

    name: str = setting(doc="what is limited")
    per_day: int = setting(1, "how many a day", min=1)


@dataclass(frozen=True)
class Example:
    """[example]: a table declared the way the module docstring says."""

    enabled: bool = setting(False, "on or off")
    mode: Literal["fast", "safe"] = setting("safe", "which way")
    ratio: float = setting(0.5, "a fraction", min=0, max=1)
    folder: Path | None = setting(None, "a folder", env="EXAMPLE_FOLDER")
    names: tuple[str, ...] = setting((), "some names")
    limits: tuple[Limit, ...] = setting((), "limits, an array of tables")
    budget: Limit | None = setting(None, "one sub-table")
    per_model: Mapping[str, int] = setting({}, "a table of the user's keys")
    even: int = setting(2, "an even number", check=lambda n: None if n % 2 == 0 else "must be even")


def make(raw: object, text: str = "", **env: str) -> Example:
    return build(Example, raw, "example", Source(Path("c.toml"), text, env))


def test_values_are_converted_to_their_annotated_types() -> None:
    ex = make(
        {
            "enabled": True,
            "mode": "fast",
            "ratio": 1,
            "folder": "~/x",
            "names": ["a", "b"],
            "limits": [{"name": "req", "per_day": 5}],
            "budget": {"name": "usd"},
            "per_model": {"opus": 3},
            "even": 4,
        }
    )
    assert ex == Example(
        enabled=True,
        mode="fast",
        ratio=1.0,
        folder=Path.home() / "x",
        names=("a", "b"),
        limits=(Limit("req", 5),),
        budget=Limit("usd", 1),
        per_model={"opus": 3},
        even=4,
    )
    assert isinstance(ex.ratio, float)
    assert make({}) == Example()


def test_the_environment_wins_over_the_table() -> None:
    assert make({"folder": "/file"}, EXAMPLE_FOLDER="/env").folder == Path("/env")
    assert make({"folder": "/file"}, EXAMPLE_FOLDER="").folder == Path("/file")  # empty: unset


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"enabeld": True}, "c.toml:2: [example] enabeld: unknown key; did you mean `enabled`?"),
        ({"mode": "quick"}, 'mode: must be one of "fast", "safe", got "quick"'),
        ({"ratio": 2}, "ratio: must be at most 1, got 2"),
        ({"ratio": True}, "ratio: must be a number, got true"),
        ({"names": "a"}, 'names: must be a list of strings, e.g. ["a", "b"], got "a"'),
        ({"limits": [{"per_day": 1}]}, "[example.limits[0]]: missing key `name`: what is limited"),
        ({"limits": [{"name": "x", "per_day": 0}]}, "[example.limits[0]] per_day: must be at least 1"),
        ({"budget": 3}, "[example.budget]: must be a table, got 3"),
        ({"per_model": {"opus": "x"}}, 'per_model: must be a whole number, got "x"'),
        ({"even": 3}, "even: must be even"),
    ],
)  # fmt: skip
def test_mistakes_are_named(raw: dict[str, object], needle: str) -> None:
    text = "[example]\nenabeld = true\n"
    with pytest.raises(ConfigError) as exc:
        make(raw, text)
    assert needle in str(exc.value)


def test_keys_and_types_are_readable_for_the_docs() -> None:
    keys = keys_of(Example)
    assert list(keys)[:3] == ["enabled", "mode", "ratio"]
    assert describe(keys["folder"].hint) == 'a path in quotes, e.g. "~/dir"'
    assert describe(keys["limits"].hint) == "a list of tables"
    assert keys["ratio"].setting.doc == "a fraction"
