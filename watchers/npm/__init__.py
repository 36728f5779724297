"""The npm side of drift watching: registry client, safe tarball reading, the watch pipeline."""
