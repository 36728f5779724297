"""driftgate's drift watchers: notice upstream change and turn it into pull requests."""
