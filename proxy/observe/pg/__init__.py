"""Analytics in PostgreSQL ([analytics] database_url): raw records partitioned by day, per-minute
aggregates beside them, one COPY writer per process. Nothing here is imported unless the URL is
set, so the embedded SQLite default needs no psycopg."""
