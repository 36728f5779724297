"""`driftgate compat run PACKAGE@VERSION`: a client release run headless, directly and through the
gateway, against a built-in echo upstream (compat runs only; no real API is called)."""
