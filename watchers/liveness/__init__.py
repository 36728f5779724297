"""`driftgate watch liveness`: notice a watcher that stopped succeeding, re-dispatch it once, alert."""
