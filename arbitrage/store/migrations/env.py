"""Alembic's entry point: migrations run on the connection ``arbitrage.store.engine.upgrade`` hands over.

Run by gpuarb itself when it opens a database (``Ledger.open``, the server), never by hand; for a new revision,
`alembic -c arbitrage/store/alembic.ini revision -m "..."` writes one from ``script.py.mako``.
"""

from __future__ import annotations

from alembic import context

from arbitrage.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("gpuarb's migrations run through arbitrage.store.engine.upgrade(), which passes a connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=False,
                  transaction_per_migration=False)
context.run_migrations()
