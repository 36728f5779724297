"""`driftgate watch shapes` (class B): what live clients send, from the gateway's shape log,
proposed as client template updates through the same diff engine and publisher as npm drift."""
