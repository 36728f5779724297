"""`driftgate watch canary`: minimal live probes that notice class C drift (behaviour, not wire)."""
