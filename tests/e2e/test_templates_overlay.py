"""A running gateway follows its templates_dir: new aliases route, a broken file keeps the last good set."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx

from driftgate.proxy.templates import canonical_json, load_bundled
from driftgate.proxy.templates.store import TemplateStore
from tests.fakes.anthropic_upstream import FakeAnthropic

BUNDLED = load_bundled()


def write_overlay(directory: Path, text: str) -> None:
    tmp = directory / "anthropic.json.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(directory / "anthropic.json")  # atomic, as a deployment would do it


def wait_for(check: Callable[[], bool]) -> None:
    """Wait (bounded) for the overlay poll to notice a change; not a speed assertion."""
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, "the gateway never picked up the overlay change"
        time.sleep(0.05)


def anthropic_health(url: str) -> tuple[dict[str, Any], list[str]]:
    doc = httpx.get(url + "/health").json()
    entry = next(t for t in doc["templates"] if t["name"] == "anthropic")
    return entry, doc["template_errors"]


def test_overlay_reload_routes_new_aliases_and_keeps_the_last_good_set(
    tmp_path: Path, gateway_factory: Any, fake_anthropic: FakeAnthropic
) -> None:
    overlay = tmp_path / "approved"
    overlay.mkdir()
    doc = copy.deepcopy(dict(BUNDLED.templates["anthropic"].doc))
    doc["aliases"] = {**doc["aliases"], "sonnet": "claude-sonnet-4-5"}
    write_overlay(overlay, canonical_json(doc))
    store = TemplateStore(overlay, poll_interval=0.05)
    gw = gateway_factory(
        backends=[fake_anthropic], templates_dir=overlay, app_kwargs={"store": store}
    )
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)

    def ask_sonnet() -> str:
        client.messages.create(
            model="sonnet", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        return str(fake_anthropic.last.json["model"])

    first, errors = anthropic_health(gw.url)
    assert first["origin"] == str(overlay / "anthropic.json") and errors == []
    assert ask_sonnet() == "claude-sonnet-4-5"

    doc["aliases"]["sonnet"] = "claude-sonnet-4-6"  # a merged drift PR lands
    write_overlay(overlay, canonical_json(doc))
    wait_for(lambda: anthropic_health(gw.url)[0]["hash"] != first["hash"])
    assert ask_sonnet() == "claude-sonnet-4-6"
    good, _ = anthropic_health(gw.url)

    write_overlay(overlay, '{"schema_version": 1, "name": "anthropic"')  # a broken file
    wait_for(lambda: bool(anthropic_health(gw.url)[1]))
    kept, errors = anthropic_health(gw.url)
    assert kept["hash"] == good["hash"]  # the last good set stays in force
    assert "anthropic.json" in errors[0] and "keeping" in errors[0]
    assert ask_sonnet() == "claude-sonnet-4-6"
