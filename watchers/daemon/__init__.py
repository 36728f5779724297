"""`driftgate daemon`: every watcher on a schedule, for machines with no GitHub Actions."""
