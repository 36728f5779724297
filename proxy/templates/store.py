"""The templates in force: the bundled set, optionally overlaid by a directory that is watched."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from driftgate.proxy.errors import TemplateError
from driftgate.proxy.templates.loader import (
    Template,
    TemplateSet,
    load_bundled,
    load_template_file,
    template_files,
)

_Signature = tuple[tuple[str, int, int, int], ...]


class TemplateStore:
    """Serve the current TemplateSet in O(1); swap in a new one when the overlay directory changes."""

    def __init__(
        self,
        overlay_dir: Path | None,
        logger: logging.Logger | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        self._dir = overlay_dir
        self.poll_interval = poll_interval
        self._log = logger or logging.getLogger("driftgate.templates")
        self._bundled = load_bundled()
        self._good: dict[str, Template] = {}  # file stem -> last overlay version that loaded
        self._signature: _Signature | None = None
        self._set = self._bundled
        if overlay_dir is not None:
            self.reload_if_changed()

    def current(self) -> TemplateSet:
        """The set in force now."""
        return self._set

    def reload_if_changed(self) -> bool:
        """Reload the overlay when a file's mtime or size changed; True when a different set is now in force."""
        if self._dir is None:
            return False
        try:
            files = template_files(self._dir) if self._dir.is_dir() else None
            signature = _signature(files) if files is not None else ()
        except (
            OSError
        ) as exc:  # a file vanishing mid-listing: keep what is in force, retry next tick
            self._log.warning("templates_dir %s: cannot list: %s", self._dir, exc.strerror)
            return False
        if signature == self._signature:
            return False
        if files is None:
            self._good.clear()
            return self._swap({}, [f"templates_dir {self._dir} is not a directory"], signature)
        errors: list[str] = []
        for path in files:
            try:
                self._good[path.stem] = self._load_overlay(path)
            except TemplateError as exc:
                kept = self._good.get(path.stem)
                fallback = f"keeping {kept.origin}" if kept else "using the bundled version"
                errors.append(f"{exc} ({fallback})")
        present = {p.stem for p in files}
        for stem in set(self._good) - present:
            del self._good[stem]  # a removed overlay falls back to the bundled template
        return self._swap(dict(self._good), errors, signature)

    def reload(self, overlay_dir: Path | None) -> bool:
        """Re-read the overlay (SIGHUP), from `overlay_dir` from now on; True when the set changed."""
        if overlay_dir != self._dir:
            self._dir = overlay_dir
            self._good.clear()
            if overlay_dir is None:
                return self._swap({}, [], None)
        self._signature = None
        return self.reload_if_changed()

    async def watch(self, interval: float | None = None) -> None:
        """Poll the overlay directory forever (the server runs this as a task)."""
        while True:
            await asyncio.sleep(self.poll_interval if interval is None else interval)
            try:
                # Parsing and validating run in a thread so the event loop keeps serving requests.
                await asyncio.to_thread(self.reload_if_changed)
            except (
                Exception
            ):  # a watcher that dies silently is worse than one that logs and retries
                self._log.exception("template reload failed; keeping the current templates")

    def _load_overlay(self, path: Path) -> Template:
        template = load_template_file(path)
        if template.name != path.stem:
            raise TemplateError(
                f"{path}: holds template {template.name!r}; name the file {template.name}.json"
            )
        bundled = self._bundled.get(template.name)
        if bundled is not None and (bundled.kind, bundled.doc.get("dialect")) != (
            template.kind,
            template.doc.get("dialect"),
        ):
            raise TemplateError(
                f"{path}: kind/dialect {template.kind}/{template.doc.get('dialect')} differs from the "
                f"bundled {bundled.kind}/{bundled.doc.get('dialect')}"
            )
        return template

    def _swap(
        self, overlay: dict[str, Template], errors: list[str], signature: _Signature | None
    ) -> bool:
        self._signature = signature
        merged = dict(self._bundled.templates)
        merged.update({t.name: t for t in overlay.values()})
        old = self._set
        same = {n: t.hash for n, t in merged.items()} == {
            n: t.hash for n, t in old.templates.items()
        }
        if same and tuple(errors) == old.errors:
            return False  # keep the old object: routers cache per set identity
        for error in errors:
            if error not in old.errors:
                self._log.warning("template overlay: %s", error)
        for name, t in merged.items():
            previous = old.get(name)
            if previous is None or previous.hash != t.hash:
                self._log.info("template %s now %s (%s)", name, t.hash, t.origin)
        self._set = TemplateSet(merged, tuple(errors))
        return True


def _signature(files: list[Path]) -> _Signature:
    out = []
    for path in files:
        st = path.stat()
        # The inode catches an atomic rename-over within one mtime tick at an equal size.
        out.append((path.name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)
