"""Where gpuarb's ledger and the server's accounts live: one database, SQLite by default, PostgreSQL for a server.

    schema.py      the tables as of the newest migration (SQLAlchemy Core)
    engine.py      which database (GPUARB_DATABASE_URL, else the SQLite file), opening it, migrating it
    legacy.py      the SQLite ledger's own v1-v3 steps, from before Alembic
    migrations/    Alembic's revisions, run by engine.upgrade when a database is opened
"""
