"""The Textual application of `driftgate top`: four tabs over a GatewayClient, kept up to date.

Two loops run while the app does: one polls /health and /analytics every `interval` seconds,
one follows /analytics/stream. Either, finding no gateway, says so in the banner and tries
again after `interval` seconds, for as long as the app runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from driftgate.proxy.top.analytics_view import analytics_view
from driftgate.proxy.top.backends_view import backends_view
from driftgate.proxy.top.client import GatewayClient, GatewayRefused, GatewayUnreachable
from driftgate.proxy.top.format import clock
from driftgate.proxy.top.hits_view import COLUMNS, hit_detail, hit_row, hits_source
from driftgate.proxy.top.state import HITS_KEPT, Hit, TopState
from driftgate.proxy.top.status_view import status_view

TABS = (
    ("status", "Status"),
    ("analytics", "Analytics"),
    ("hits", "Hits"),
    ("backends", "Backends"),
)


class TopApp(App[None]):
    """`driftgate top`: Status, Analytics, Hits and Backends of one running gateway."""

    TITLE = "driftgate top"
    CSS = """
    #banner { height: auto; padding: 0 1; background: $boost; }
    #banner.up { background: $success 25%; }
    #banner.down { background: $error; color: $text; text-style: bold; }
    TabbedContent, ContentSwitcher { height: 1fr; }
    TabPane { height: 1fr; padding: 0 1; }
    #hits-note { height: auto; }
    #hits-table { height: 1fr; }
    #hit-detail-box { height: 16; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_tab('status')", "Status"),
        Binding("2", "show_tab('analytics')", "Analytics"),
        Binding("3", "show_tab('hits')", "Hits"),
        Binding("4", "show_tab('backends')", "Backends"),
        Binding("r", "resume", "Resume guard"),
        Binding("w", "window", "Window"),
        Binding("p", "probe", "Probe backends"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, client: GatewayClient, window: str = "60m", interval: float = 2.0) -> None:
        super().__init__()
        self.client = client
        self.state = TopState(client.url, window=window)
        self.interval = interval
        self.sub_title = client.url
        self._follow_cursor = True

    def compose(self) -> ComposeResult:
        """The banner, the four tabs, the key bindings (widgets kept, so no query can miss)."""
        self.banner = Static(f"connecting to {self.client.url} ...", id="banner")
        self.status_body = Static(id="status-body")
        self.analytics_body = Static(id="analytics-body")
        self.backends_body = Static(id="backends-body")
        self.hits_note = Static(id="hits-note")
        self.hits_table: DataTable[object] = DataTable(id="hits-table", cursor_type="row")
        self.hits_table.add_columns(*COLUMNS)
        self.detail = Static(hit_detail(None), id="hit-detail")
        yield Header()
        yield self.banner
        with TabbedContent(initial="status"):
            with TabPane("Status", id="status"), VerticalScroll():
                yield self.status_body
            with TabPane("Analytics", id="analytics"), VerticalScroll():
                yield self.analytics_body
            with TabPane("Hits", id="hits"):
                yield self.hits_note
                yield self.hits_table
                with VerticalScroll(id="hit-detail-box"):
                    yield self.detail
            with TabPane("Backends", id="backends"), VerticalScroll():
                yield self.backends_body
        yield Footer()

    def on_mount(self) -> None:
        """Start the poller and the stream follower."""
        self.run_worker(self._poll_loop(), name="poll", exit_on_error=False)
        self.run_worker(self._follow_loop(), name="follow", exit_on_error=False)
        self._render_all()

    async def on_unmount(self) -> None:
        """Close the HTTP connections."""
        await self.client.aclose()

    # --- the loops ---------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await self.refresh_now()
            await asyncio.sleep(self.interval)

    async def refresh_now(self, probe: bool = False) -> None:
        """Read /health and /analytics once and show them."""
        try:
            self.state.took_health(await self.client.health(probe=probe), time.time())
            self.state.answered()
            try:
                self.state.analytics = await self.client.analytics(self.state.window)
                self.state.analytics_problem = None
            except GatewayRefused as exc:  # analytics off: the other tabs still work
                self.state.analytics_problem = str(exc)
        except GatewayUnreachable as exc:
            self.state.went_away(str(exc), time.time())
        except GatewayRefused as exc:
            self.state.answered()
            self.state.problem = str(exc)
        self._render_all()

    async def _follow_loop(self) -> None:
        while True:
            try:
                async for doc in self.client.records(on_open=self._stream_opened):
                    self._add_hit(self.state.add_record(doc))
            except GatewayUnreachable as exc:
                self.state.went_away(str(exc), time.time())
            except GatewayRefused as exc:
                self.state.analytics_problem = str(exc)
            self.state.streaming = False
            self._render_banner()
            await asyncio.sleep(self.interval)

    def _stream_opened(self) -> None:
        self.state.streaming = True
        self.state.answered()
        self._render_banner()

    # --- showing ------------------------------------------------------------------------------

    def _render_all(self) -> None:
        self._render_banner()
        self.status_body.update(status_view(self.state))
        self.analytics_body.update(analytics_view(self.state))
        self.backends_body.update(backends_view(self.state))
        self.hits_note.update(hits_source(self.state.health))

    def _render_banner(self) -> None:
        banner = self.banner
        s = self.state
        banner.set_class(s.reachable is False, "down")
        banner.set_class(s.reachable is True, "up")
        if s.reachable is False:
            text = Text(f"✗ NOT REACHABLE: {s.problem} · since {clock(s.down_since)} · retrying "
                        f"every {self.interval:g}s · is `driftgate proxy` running?")  # fmt: skip
        elif s.reachable is None:
            text = Text(f"connecting to {s.url} ...")
        else:
            live = "live stream on" if s.streaming else "live stream reconnecting"
            text = Text(f"● connected to {s.url} · {live} · {s.seen} requests seen")
            if s.problem:
                text.append(f" · {s.problem}", style="bold yellow")
        banner.update(text)  # Text, not str: a message with [brackets] is not markup

    def _add_hit(self, hit: Hit) -> None:
        table = self.hits_table
        at_end = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        table.add_row(*hit_row(hit), key=str(hit.seq))
        while table.row_count > HITS_KEPT:
            table.remove_row(next(iter(table.rows)))
        if at_end and self._follow_cursor:
            table.move_cursor(row=table.row_count - 1)
        self._render_banner()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The drill-down follows the cursor."""
        self._show_detail(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: its metadata."""
        self._show_detail(event.row_key.value)

    def _show_detail(self, key: str | None) -> None:
        hit = self.state.hit(int(key)) if key else None
        self.detail.update(hit_detail(hit))

    # --- actions ------------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = tab

    async def action_resume(self) -> None:
        """Lift the spend guard's halt (POST /guard/resume)."""
        if self.state.guard.get("state") != "halted":
            self.notify("the spend guard is not halted: nothing to resume")
            return
        try:
            doc = await self.client.resume()
        except (GatewayUnreachable, GatewayRefused) as exc:
            self.notify(f"resume failed: {exc}", severity="error")
            return
        was = doc.get("resumed")
        self.notify("resumed: requests are forwarded again" if was else "it was not halted")
        await self.refresh_now()

    async def action_window(self) -> None:
        """The next analytics window (15m, 60m, 24h, 7d)."""
        self.notify(f"analytics window: last {self.state.next_window()}")
        await self.refresh_now()

    async def action_probe(self) -> None:
        """Probe every backend once (/health?probe=1) and show the result on Backends."""
        self.notify("probing every backend ...")
        await self.refresh_now(probe=True)
