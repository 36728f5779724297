"""Seeing the traffic: analytics records, the usage database, /metrics, the live stream, traces."""
