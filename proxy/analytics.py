"""Kept so `driftgate.proxy.analytics` imports keep working: the code lives in proxy/observe/."""

from driftgate.proxy.observe.pricing import Prices, cost_usd, priced, prices
from driftgate.proxy.observe.recorder import Recorder, RecordSink
from driftgate.proxy.observe.records import COUNT_TOKENS, RequestRecord
from driftgate.proxy.observe.usage_db import DB_NAME, MIGRATIONS, open_db, summarise, usage_db_path

UsageRecord = RequestRecord

__all__ = [
    "COUNT_TOKENS",
    "DB_NAME",
    "MIGRATIONS",
    "Prices",
    "RecordSink",
    "Recorder",
    "RequestRecord",
    "UsageRecord",
    "cost_usd",
    "open_db",
    "priced",
    "prices",
    "summarise",
    "usage_db_path",
]
