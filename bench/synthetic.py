"""A synthetic database for the data benchmarks: one wide ``events`` table, sized by ``rows``."""

from __future__ import annotations

from runbooks.providers.postgres import Postgres


def events_database(pg: Postgres, name: str, rows: int, *, restore_shape: bool = False) -> Postgres:
    """(Re)create database ``name`` with ``rows`` events. ``restore_shape`` adds what makes a restore do
    real work in parallel: a primary key and a second table."""
    pg.drop_database(name)
    pg.create_database(name)
    db = pg.for_database(name)
    with db.connect() as conn:
        conn.execute(
            f"CREATE TABLE events AS SELECT g AS id, now() - make_interval(secs => g) AS at, "
            f"md5(g::text) || ' ' || md5((g * 31)::text) AS body, (g % 997) AS tenant "
            f"FROM generate_series(1, {int(rows)}) g"
        )
        if restore_shape:
            conn.execute("ALTER TABLE events ADD PRIMARY KEY (id)")
        conn.execute("CREATE INDEX ON events (tenant, at)")
        if restore_shape:
            conn.execute(
                "CREATE TABLE tenants AS SELECT g AS id, 'tenant-' || g AS name FROM generate_series(1, 997) g"
            )
    return db
