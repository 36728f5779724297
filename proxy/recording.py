"""Kept so `driftgate.proxy.recording` imports keep working: the code is proxy/observe/keeper.py."""

from driftgate.proxy.observe.keeper import CLIENT_GONE, FLUSH_EVERY, RecordKeeper, open_recorder

__all__ = ["CLIENT_GONE", "FLUSH_EVERY", "RecordKeeper", "open_recorder"]
