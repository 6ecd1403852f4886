"""Which database gpuarb uses, opening it, and bringing its schema to the newest migration.

``GPUARB_DATABASE_URL`` names it (``postgresql://user@host/db`` for a team server; any SQLAlchemy URL), else the
embedded SQLite file ``paths.ledger_file()`` (nothing to set up for one user). Opening a database migrates it
with Alembic (``migrations/``): a SQLite ledger from before Alembic (``PRAGMA user_version`` 1-3) is brought up
in place; a database from a newer gpuarb is refused. A database already at the newest revision is opened without
importing Alembic, so commands stay quick.

SQLite is opened in WAL mode (readers never wait for the writer), with foreign keys on and writes in
``BEGIN IMMEDIATE`` transactions (so two writers queue instead of failing half-way); PostgreSQL runs migrations
under an advisory lock, so two server replicas starting at once migrate once. Messages name the database by its
file or by its URL with the password hidden.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from arbitrage import paths
from arbitrage.errors import LedgerError, UsageError
from arbitrage.store import legacy

ENV_URL = "GPUARB_DATABASE_URL"
# Every revision in migrations/versions, oldest first; the last is the schema arbitrage.store.schema describes.
REVISIONS = ("0001_baseline", "0002_exact_money_teams", "0003_accounts", "0004_sealed_specs")
HEAD = REVISIONS[-1]
_MIGRATION_LOCK = 7_325_182_611  # pg_advisory_xact_lock key: gpuarb's migrations
_WRITE = "gpuarb_write"  # Connection.info flag: the next transaction writes (SQLite: BEGIN IMMEDIATE)
_PG_ENGINES: dict[str, sa.Engine] = {}


@dataclass(frozen=True)
class Database:
    """An open database: its engine, the URL to open it again (other threads, the detached supervisor) and how
    messages name it."""

    engine: sa.Engine
    url: str
    where: str
    path: Path | None  # the SQLite file; None for a server database

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def database_url(env: Mapping[str, str] | None = None) -> str:
    """``$GPUARB_DATABASE_URL``, else the SQLite ledger file's URL."""
    values = os.environ if env is None else env
    given = (values.get(ENV_URL) or "").strip()
    if given and "://" not in given:
        raise UsageError(f"{ENV_URL}: not a database URL (e.g. postgresql://gpuarb@db.internal/gpuarb or "
                         "sqlite:////var/lib/gpuarb/ledger.sqlite3)")
    return given or f"sqlite:///{paths.ledger_file(values)}"


def _parse(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise UsageError(f"{ENV_URL}: not a database URL (e.g. postgresql://gpuarb@db.internal/gpuarb or "
                         "sqlite:////var/lib/gpuarb/ledger.sqlite3)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(f"{ENV_URL}: {parsed.get_backend_name()!r} databases are not supported "
                         "(sqlite or postgresql)")
    if parsed.drivername == "postgresql":  # psycopg 3 when it is installed (the server extra), else SQLAlchemy's
        try:
            import psycopg  # noqa: F401
            parsed = parsed.set(drivername="postgresql+psycopg")
        except ImportError:
            pass
    return parsed


def describe(url: str) -> str:
    """How a message names the database: the SQLite file, or the URL with its password hidden."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def _sqlite_engine(path: Path) -> sa.Engine:
    paths.private_dir(path.parent)
    # Created 0600 before SQLite opens it (one from an older gpuarb loses group/other access); SQLite gives the -wal
    # and -shm files the same mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:  # the -wal and -shm files come and go as other connections close: gone is fine
            info = part.stat()
            if info.st_uid == os.getuid() and info.st_mode & 0o077:
                part.chmod(0o600)
        except FileNotFoundError:
            continue
    # NullPool: a connection per use, so nothing holds a file that a test (or a user) replaced underneath.
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool,
                              connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_conn.cursor()
        _wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop(_WRITE, False) else "BEGIN")

    return engine


def _wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so): only a new file needs it, and a connection that finds another one
    switching it at that moment waits and tries again (that switch takes no busy timeout)."""
    import sqlite3
    import time

    for attempt in range(100):
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _postgres_engine(url: sa.URL) -> sa.Engine:
    key = url.render_as_string(hide_password=False)
    engine = _PG_ENGINES.get(key)
    if engine is None:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        _PG_ENGINES[key] = engine
    return engine


def writing(conn: sa.Connection) -> sa.Connection:
    """Mark ``conn``'s next transaction as a write (SQLite takes the write lock at BEGIN); returns ``conn``."""
    conn.info[_WRITE] = True
    return conn


def open_database(url: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Database:
    """Open (creating and migrating as needed) the database at ``url`` (a URL or a SQLite file's path), else the
    one ``$GPUARB_DATABASE_URL`` names, else the SQLite ledger file. LedgerError names it when it cannot be opened,
    is from a newer gpuarb, or does not migrate."""
    text = str(url) if isinstance(url, Path) else (url or database_url(env))
    if isinstance(url, Path) or "://" not in text:
        text = f"sqlite:///{Path(text)}"
    parsed = _parse(text)
    where = describe(text)
    try:
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            database = Database(_sqlite_engine(path), text, str(path), path)
        else:
            database = Database(_postgres_engine(parsed), text, where, None)
        upgrade(database)
    except sa.exc.DBAPIError as exc:
        raise LedgerError(f"{where}: cannot open the run ledger: {one_line(exc)}") from None
    except OSError as exc:
        raise LedgerError(f"{where}: cannot create the run ledger: {exc.strerror or exc}") from None
    return database


def one_line(exc: sa.exc.DBAPIError) -> str:
    """The driver's own message, first line, without SQLAlchemy's SQL and parameters."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return (text.strip().splitlines() or ["database error"])[0][:300]


def current_revision(conn: sa.Connection) -> str | None:
    """The Alembic revision the database is at (None: no alembic_version table, or it is empty)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(database: Database) -> None:
    """Bring the schema to HEAD in one transaction (a no-op, without importing Alembic, when it is there)."""
    with database.engine.connect() as conn, conn.begin():
        if current_revision(conn) == HEAD:
            return
    sqlite = database.dialect == "sqlite"
    with database.engine.connect() as conn:
        if sqlite:  # PRAGMA foreign_keys cannot change inside a transaction; columns move below
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with writing(conn).begin():
                if not sqlite:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                _migrate(conn, database)
            if sqlite:
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                conn.commit()
                if problems:
                    raise LedgerError(f"{database.where}: the migrated ledger has dangling rows: {problems[:3]}")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def _migrate(conn: sa.Connection, database: Database) -> None:
    current = current_revision(conn)  # again, under the lock: another process may have just migrated
    if current == HEAD:
        return
    if current is not None and current not in REVISIONS:
        raise LedgerError(f"{database.where}: the database is at schema revision {current!r}, newer than this "
                          f"gpuarb ({HEAD}); upgrade gpuarb")
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = conn
    if current is None and database.dialect == "sqlite":
        version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
        if version > legacy.LEGACY_VERSION:
            raise LedgerError(f"{database.where}: ledger schema v{version} is newer than this gpuarb "
                              f"(v{legacy.LEGACY_VERSION}, {HEAD}); upgrade gpuarb")
        if sa.inspect(conn).has_table("runs"):  # a ledger from before Alembic: its own steps, then the baseline
            legacy.bring_to_v3(conn.exec_driver_sql, version)
            command.stamp(config, REVISIONS[0])
    command.upgrade(config, HEAD)
    if database.dialect == "sqlite":
        conn.exec_driver_sql(f"PRAGMA user_version = {legacy.MIGRATED_USER_VERSION}")


def dispose(url: str) -> None:
    """Close the pooled connections of a server database opened here (tests drop their databases after)."""
    parsed = _parse(url)
    engine = _PG_ENGINES.pop(parsed.render_as_string(hide_password=False), None)
    if engine is not None:
        engine.dispose()
