"""The team server's account store: teams, their accounts (people and CI, each with a role), bearer tokens, the
audit log, monthly budgets per team and per tag, and the budget alerts already sent.

Storage and token crypto only (no HTTP, no CLI), over the tables of ``arbitrage.store.schema`` in the database
``arbitrage.store.engine`` opens (SQLite or PostgreSQL, the same behaviour in both).

A token is ``gpa_<id>_<secret>``: ``id`` is 12 lowercase hex characters (public: it names the token in lists and
the audit log), ``secret`` 43 URL-safe base64 characters (256 bits). Only the secret's SHA-256 is stored, compared
in constant time; the secret exists once, in the ``IssuedToken`` that ``issue_token`` returns. ``authenticate``
refuses a token with one message whatever the cause (a client learns nothing from it), and says which cause in
``AuthError.reason`` (for the audit log): missing, malformed, unknown, tampered, revoked, expired, disabled.
The audit log never holds a secret: anything shaped like a token in what it records is cut to ``gpa_<id>_***``.

Times are aware datetimes in, ISO-8601 UTC text to the second in the database; money is integer micro-USD
(``arbitrage.money``). Names of teams and accounts are 1-64 characters ``[a-z0-9][a-z0-9._-]*``. What the
caller gets wrong is a UsageError naming the field; what the database refuses is a LedgerError naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from arbitrage import money
from arbitrage.errors import AuthError, LedgerError, UsageError
from arbitrage.store import engine, schema
from arbitrage.store.schema import ROLES

__all__ = [
    "AUTH_MESSAGE", "ROLES", "Account", "Accounts", "AuditEntry", "Budget", "IssuedToken", "Principal", "Team",
    "TokenInfo", "redact", "token_id_of",
]

AUTH_MESSAGE = "invalid or missing token"  # the one thing a refused client is told
TOKEN_PREFIX = "gpa_"
TOUCH_EVERY = timedelta(minutes=1)  # a token's last_used_at is written at most this often
MAX_PATH_CHARS = 2048  # what the audit keeps of a request path (after redaction)
MAX_DETAIL_CHARS = 2000
MAX_TAG_CHARS = 128
_MAX_MICRO = 2**63 - 1  # BIGINT

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"gpa_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_TOKEN_LIKE = re.compile(r"gpa_[A-Za-z0-9_-]*", re.IGNORECASE)
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- records ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Team:
    name: str
    created_at: datetime
    webhook_url: str | None  # where budget alerts are posted; None: nowhere


@dataclass(frozen=True)
class Account:
    id: str
    team: str
    name: str
    role: str  # one of ROLES
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class TokenInfo:
    """A token as stored (never its secret), with its account's team, name and role."""

    id: str
    account_id: str
    team: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Principal:
    """Who a request is: the account its token belongs to."""

    account_id: str
    name: str
    team: str
    role: str
    token_id: str


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the only place its secret ever exists (shown once to whoever asked for it; not in repr)."""

    token: str = field(repr=False)
    info: TokenInfo


@dataclass(frozen=True)
class Budget:
    """A team's monthly cap, or the cap of the team's runs with one tag (``tag_key``/``tag_value`` '' for the
    team's own)."""

    team: str
    tag_key: str
    tag_value: str
    monthly_cap_micro_usd: int
    updated_at: datetime

    @property
    def tag(self) -> tuple[str, str] | None:
        return (self.tag_key, self.tag_value) if self.tag_key else None

    @property
    def cap_usd(self) -> float:
        return money.usd(self.monthly_cap_micro_usd)

    @property
    def label(self) -> str:
        """'team ml', or 'team ml, tag model=llama3'."""
        return _budget_label(self.team, self.tag)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    token_id: str | None  # None: no token, or one that did not parse
    account_id: str | None
    team: str | None
    method: str
    path: str
    status: int
    run_id: str | None
    remote: str | None
    detail: str


# -- checks and token text ------------------------------------------------------------------------------------------

def check_name(value: object, what: str) -> str:
    """A team or account name as given, else UsageError naming ``what``."""
    if isinstance(value, str) and _NAME.fullmatch(value):
        return value
    raise UsageError(f"{what}: {value!r} is not a valid name (1-64 characters: lowercase letters, digits, '.', '_' "
                     "and '-', starting with a letter or digit)")


def check_role(value: object) -> str:
    if isinstance(value, str) and value in ROLES:
        return value
    raise UsageError(f"role: {value!r} is not a role (one of {', '.join(ROLES)})")


def check_tag(tag: tuple[str, str] | None) -> tuple[str, str]:
    """A budget's tag as (key, value); ('', '') for none."""
    if tag is None:
        return ("", "")
    if not (isinstance(tag, tuple) and len(tag) == 2):
        raise UsageError(f"tag: {tag!r} is not a (key, value) pair")
    key, value = tag
    for what, text in (("tag key", key), ("tag value", value)):
        if not isinstance(text, str) or not text or text != text.strip() or _CONTROL.search(text) \
                or len(text) > MAX_TAG_CHARS:
            raise UsageError(f"{what}: {text!r} must be 1-{MAX_TAG_CHARS} characters, without surrounding spaces "
                             "or control characters")
    if "=" in key:
        raise UsageError(f"tag key: {key!r} must not contain '='")
    return (key, value)


def check_webhook(url: object) -> str | None:
    """A webhook URL (http or https, with a host), or None for none."""
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or _CONTROL.search(url) \
            or " " in url:
        raise UsageError(f"webhook URL: {url!r} is not an http(s) URL (e.g. https://hooks.slack.com/services/...)")
    return url


def token_id_of(text: str | None) -> str | None:
    """The id of a token (``gpa_<id>_<secret>``) or a bare token id; None for anything else."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if _TOKEN_ID.fullmatch(text):
        return text
    parsed = _TOKEN.fullmatch(text)
    return parsed.group(1) if parsed else None


def redact(text: str) -> str:
    """``text`` with anything shaped like a token cut to ``gpa_<id>_***`` (``gpa_***`` when it has no id); a
    bare ``gpa_<id>`` (no secret) stays."""
    return _TOKEN_LIKE.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    text = match.group(0)
    token_id = text[4:16]
    if len(text) == 4 or (_TOKEN_ID.fullmatch(token_id) and len(text) in (16, 17)):
        return text  # no secret: 'gpa_', a bare id, or one already cut ('gpa_<id>_***')
    if _TOKEN_ID.fullmatch(token_id) and text[16] == "_":
        return f"gpa_{token_id}_***"
    return "gpa_***"


def _refuse(reason: str) -> AuthError:
    return AuthError(AUTH_MESSAGE, reason=reason)


def _parse_token(text: str | None) -> tuple[str, str]:
    """(id, secret) of a token, else AuthError 'missing' or 'malformed'."""
    if text is None or (isinstance(text, str) and not text.strip()):
        raise _refuse("missing")
    parsed = _TOKEN.fullmatch(text.strip()) if isinstance(text, str) else None
    if parsed is None:
        raise _refuse("malformed")
    return parsed.group(1), parsed.group(2)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _budget_label(team: str, tag: tuple[str, str] | None) -> str:
    return f"team {team}" + (f", tag {tag[0]}={tag[1]}" if tag else "")


# -- times -----------------------------------------------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware one (UTC)")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- rows to records -------------------------------------------------------------------------------------------------

_TOKEN_COLUMNS = (
    schema.tokens.c.id, schema.tokens.c.account_id, schema.tokens.c.secret_sha256, schema.tokens.c.created_at,
    schema.tokens.c.expires_at, schema.tokens.c.revoked_at, schema.tokens.c.last_used_at,
    schema.accounts.c.team, schema.accounts.c.name, schema.accounts.c.role, schema.accounts.c.disabled_at,
)


def _token_select() -> sa.Select[Any]:
    return sa.select(*_TOKEN_COLUMNS).select_from(
        schema.tokens.join(schema.accounts, schema.tokens.c.account_id == schema.accounts.c.id))


def _token_info(row: Any) -> TokenInfo:
    return TokenInfo(id=row.id, account_id=row.account_id, team=row.team, name=row.name, role=row.role,
                     created_at=_at(row.created_at), expires_at=_time(row.expires_at),
                     revoked_at=_time(row.revoked_at), last_used_at=_time(row.last_used_at))


def _account(row: Any) -> Account:
    return Account(id=row.id, team=row.team, name=row.name, role=row.role, created_at=_at(row.created_at),
                   disabled_at=_time(row.disabled_at))


def _team(row: Any) -> Team:
    return Team(name=row.name, created_at=_at(row.created_at), webhook_url=row.webhook_url)


def _budget(row: Any) -> Budget:
    return Budget(team=row.team, tag_key=row.tag_key, tag_value=row.tag_value,
                  monthly_cap_micro_usd=int(row.monthly_cap_micro_usd), updated_at=_at(row.updated_at))


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(id=int(row.id), at=_at(row.at), token_id=row.token_id, account_id=row.account_id,
                      team=row.team, method=row.method, path=row.path, status=int(row.status), run_id=row.run_id,
                      remote=row.remote, detail=row.detail)


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT for ``conn``'s dialect that can say ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    return (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table)


def _insert_new(conn: sa.Connection, table: sa.Table, values: Mapping[str, Any]) -> bool:
    """Insert a row unless its key is taken (by a concurrent writer too); whether it was inserted (psycopg reports
    an INSERT's row count only when asked to keep it: SQLAlchemy >= 2.0.28)."""
    insert = _insert(conn, table).values(**values).on_conflict_do_nothing()
    return conn.execute(insert, execution_options={"preserve_rowcount": True}).rowcount == 1


# -- the store -------------------------------------------------------------------------------------------------------

class Accounts:
    """The account store over one open database."""

    def __init__(self, database: engine.Database) -> None:
        self._db = database
        self.where = database.where
        self._closed = False

    @classmethod
    def open(cls, url: str | None = None) -> Accounts:
        """The store in the database at ``url`` (else ``$GPUARB_DATABASE_URL``, else the SQLite ledger file),
        created or migrated as needed."""
        return cls(engine.open_database(url or engine.database_url()))

    def close(self) -> None:
        """Done with the store (a SQLite engine is disposed; a server database's pool is shared and stays)."""
        if not self._closed and self._db.dialect == "sqlite":
            self._db.engine.dispose()
        self._closed = True

    def __enter__(self) -> Accounts:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sa.Connection]:
        if self._closed:
            raise LedgerError(f"{self.where}: the account store is closed")
        try:
            with self._db.engine.connect() as conn, (engine.writing(conn) if write else conn).begin():
                yield conn
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"{self.where}: {engine.one_line(exc)}") from None

    def _reading(self) -> AbstractContextManager[sa.Connection]:
        return self._transaction(write=False)

    def _writing(self) -> AbstractContextManager[sa.Connection]:
        return self._transaction(write=True)

    # -- teams ---------------------------------------------------------------------------------------------------

    def ensure_team(self, name: str, now: datetime, webhook_url: str | None = None) -> Team:
        """The team ``name``, created if missing; a webhook URL given replaces the team's."""
        name = check_name(name, "team")
        webhook_url = check_webhook(webhook_url)
        with self._writing() as conn:
            _insert_new(conn, schema.teams, {"name": name, "created_at": _iso(now), "webhook_url": webhook_url})
            if webhook_url is not None:
                conn.execute(sa.update(schema.teams).where(schema.teams.c.name == name)
                             .values(webhook_url=webhook_url))
            return self._team_row(conn, name)

    def set_webhook(self, team: str, url: str | None) -> Team:
        """Set (or, with None, clear) where the team's budget alerts are posted; UsageError for an unknown team."""
        team = check_name(team, "team")
        url = check_webhook(url)
        with self._writing() as conn:
            done = conn.execute(sa.update(schema.teams).where(schema.teams.c.name == team).values(webhook_url=url))
            if done.rowcount == 0:
                raise UsageError(f"team: no team {team!r} in {self.where}")
            return self._team_row(conn, team)

    def team(self, name: str) -> Team | None:
        """The team ``name``, or None when there is none."""
        name = check_name(name, "team")
        with self._reading() as conn:
            row = conn.execute(sa.select(schema.teams).where(schema.teams.c.name == name)).first()
        return _team(row) if row is not None else None

    @staticmethod
    def _team_row(conn: sa.Connection, name: str) -> Team:
        return _team(conn.execute(sa.select(schema.teams).where(schema.teams.c.name == name)).one())

    # -- accounts and tokens ---------------------------------------------------------------------------------------

    def issue_token(self, team: str, name: str, role: str, now: datetime,
                    expires_in: timedelta | None = None) -> IssuedToken:
        """A new token for the account ``name`` of ``team`` (both created when missing). An existing account keeps
        its role: asking for another is a UsageError, and so is a disabled account."""
        team = check_name(team, "team")
        name = check_name(name, "account")
        role = check_role(role)
        created_at = _iso(now)
        expires_at = self._expiry(now, expires_in)
        with self._writing() as conn:
            _insert_new(conn, schema.teams, {"name": team, "created_at": created_at, "webhook_url": None})
            account = self._ensure_account(conn, team, name, role, created_at)
            token_id, secret = self._insert_token(conn, account.id, created_at, expires_at)
        info = TokenInfo(id=token_id, account_id=account.id, team=team, name=name, role=account.role,
                         created_at=_at(created_at), expires_at=_time(expires_at), revoked_at=None,
                         last_used_at=None)
        return IssuedToken(token=f"{TOKEN_PREFIX}{token_id}_{secret}", info=info)

    @staticmethod
    def _expiry(now: datetime, expires_in: timedelta | None) -> str | None:
        if expires_in is None:
            return None
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0):
            raise UsageError(f"expires in: {expires_in!r} must be a positive time span")
        try:
            return _iso(now + expires_in)
        except OverflowError:
            raise UsageError(f"expires in: {expires_in} is too far in the future") from None

    def _ensure_account(self, conn: sa.Connection, team: str, name: str, role: str, created_at: str) -> Account:
        where = (schema.accounts.c.team == team) & (schema.accounts.c.name == name)
        row = conn.execute(sa.select(schema.accounts).where(where)).first()
        if row is None:
            _insert_new(conn, schema.accounts, {"id": secrets.token_hex(8), "team": team, "name": name, "role": role,
                                                "created_at": created_at, "disabled_at": None})
            row = conn.execute(sa.select(schema.accounts).where(where)).one()
        account = _account(row)
        if account.role != role:
            raise UsageError(f"role: account {name!r} of team {team!r} already exists with role {account.role!r} "
                             f"(not {role!r})")
        if account.disabled_at is not None:
            raise UsageError(f"account: {name!r} of team {team!r} is disabled (since {row.disabled_at}); "
                             "it gets no new tokens")
        return account

    def _insert_token(self, conn: sa.Connection, account_id: str, created_at: str,
                      expires_at: str | None) -> tuple[str, str]:
        for _ in range(5):  # 48 random bits: a taken id is all but impossible, and then another is drawn
            token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            values = {"id": token_id, "account_id": account_id, "secret_sha256": _digest(secret),
                      "created_at": created_at, "expires_at": expires_at, "revoked_at": None, "last_used_at": None}
            if _insert_new(conn, schema.tokens, values):
                return token_id, secret
        raise LedgerError(f"{self.where}: could not draw an unused token id")

    def authenticate(self, token_text: str | None, now: datetime) -> Principal:
        """Who ``token_text`` is, else AuthError(AUTH_MESSAGE) whose ``reason`` says why: missing, malformed,
        unknown, tampered (a known id with a wrong secret), revoked, expired or disabled."""
        token_id, secret = _parse_token(token_text)
        with self._reading() as conn:
            row = conn.execute(_token_select().where(schema.tokens.c.id == token_id)).first()
        if row is None:
            raise _refuse("unknown")
        if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            raise _refuse("tampered")
        if row.revoked_at is not None:
            raise _refuse("revoked")
        if row.expires_at is not None and now >= _at(row.expires_at):
            raise _refuse("expired")
        if row.disabled_at is not None:
            raise _refuse("disabled")
        self._touch(token_id, _time(row.last_used_at), now)
        return Principal(account_id=row.account_id, name=row.name, team=row.team, role=row.role, token_id=token_id)

    def _touch(self, token_id: str, last_used: datetime | None, now: datetime) -> None:
        """Note that the token was used, unless that was noted less than TOUCH_EVERY ago (also by another
        replica: the update is conditional)."""
        if last_used is not None and now - last_used < TOUCH_EVERY:
            return
        column = schema.tokens.c.last_used_at
        with self._writing() as conn:
            conn.execute(sa.update(schema.tokens)
                         .where(schema.tokens.c.id == token_id,
                                sa.or_(column.is_(None), column <= _iso(now - TOUCH_EVERY)))
                         .values(last_used_at=_iso(now)))

    def revoke(self, token_id: str, now: datetime) -> TokenInfo:
        """Revoke a token by its id (revoking it again keeps the first time); UsageError for an unknown id."""
        if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
            raise UsageError(f"token id: {token_id!r} is not a token id (12 lowercase hex characters, the part "
                             "after gpa_)")
        with self._writing() as conn:
            conn.execute(sa.update(schema.tokens)
                         .where(schema.tokens.c.id == token_id, schema.tokens.c.revoked_at.is_(None))
                         .values(revoked_at=_iso(now)))
            row = conn.execute(_token_select().where(schema.tokens.c.id == token_id)).first()
            if row is None:
                raise UsageError(f"token id: no token {token_id!r} in {self.where}")
        return _token_info(row)

    def disable_account(self, team: str, name: str, now: datetime) -> Account:
        """Disable an account: none of its tokens authenticates again (disabling again keeps the first time)."""
        team = check_name(team, "team")
        name = check_name(name, "account")
        where = (schema.accounts.c.team == team) & (schema.accounts.c.name == name)
        with self._writing() as conn:
            conn.execute(sa.update(schema.accounts).where(where, schema.accounts.c.disabled_at.is_(None))
                         .values(disabled_at=_iso(now)))
            row = conn.execute(sa.select(schema.accounts).where(where)).first()
            if row is None:
                raise UsageError(f"account: no account {name!r} in team {team!r} in {self.where}")
        return _account(row)

    def tokens(self, team: str | None = None) -> list[TokenInfo]:
        """Every token (of ``team``), newest first."""
        query = _token_select().order_by(schema.tokens.c.created_at.desc(), schema.tokens.c.id.desc())
        if team is not None:
            query = query.where(schema.accounts.c.team == check_name(team, "team"))
        with self._reading() as conn:
            return [_token_info(row) for row in conn.execute(query)]

    # -- audit -----------------------------------------------------------------------------------------------------

    def record_audit(self, now: datetime, *, method: str, path: str, status: int, principal: Principal | None,
                     token_id: str | None, run_id: str | None = None, remote: str | None = None,
                     detail: str = "") -> AuditEntry:
        """Log a request. Anything token-shaped in its text is cut to ``gpa_<id>_***`` first; ``token_id`` is
        kept only when it is a token id (or a token, whose id is kept); with a principal and no token id, the
        principal's."""
        if token_id is not None:
            kept_id = token_id_of(token_id)
        else:
            kept_id = principal.token_id if principal is not None else None
        values = {
            "at": _iso(now), "token_id": kept_id,
            "account_id": principal.account_id if principal else None, "team": principal.team if principal else None,
            "method": redact(str(method))[:16], "path": redact(str(path))[:MAX_PATH_CHARS], "status": int(status),
            "run_id": redact(run_id)[:200] if run_id is not None else None,
            "remote": redact(remote)[:200] if remote is not None else None,
            "detail": redact(str(detail))[:MAX_DETAIL_CHARS],
        }
        with self._writing() as conn:
            entry_id = conn.execute(sa.insert(schema.audit).values(**values)).inserted_primary_key[0]
        return AuditEntry(id=int(entry_id), at=_at(values["at"]), **{k: v for k, v in values.items() if k != "at"})

    def audit(self, team: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` audit entries (of ``team``), newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UsageError(f"limit: {limit!r} must be a whole number of at least 1")
        query = sa.select(schema.audit).order_by(schema.audit.c.at.desc(), schema.audit.c.id.desc()).limit(limit)
        if team is not None:
            query = query.where(schema.audit.c.team == check_name(team, "team"))
        with self._reading() as conn:
            return [_audit_entry(row) for row in conn.execute(query)]

    # -- budgets -------------------------------------------------------------------------------------------------

    def set_budget(self, team: str, cap_usd: float | int | Decimal, now: datetime,
                   tag: tuple[str, str] | None = None) -> Budget:
        """Set the monthly cap of ``team`` (the team is created if missing), or of its runs tagged ``tag``."""
        team = check_name(team, "team")
        tag_key, tag_value = check_tag(tag)
        cap_micro = _cap_micro(cap_usd, _budget_label(team, tag))
        stamp = _iso(now)
        values = {"team": team, "tag_key": tag_key, "tag_value": tag_value, "monthly_cap_micro_usd": cap_micro,
                  "updated_at": stamp}
        with self._writing() as conn:
            _insert_new(conn, schema.teams, {"name": team, "created_at": stamp, "webhook_url": None})
            upsert = _insert(conn, schema.budgets).values(**values).on_conflict_do_update(
                index_elements=["team", "tag_key", "tag_value"],
                set_={"monthly_cap_micro_usd": cap_micro, "updated_at": stamp})
            conn.execute(upsert)
        return Budget(team, tag_key, tag_value, cap_micro, _at(stamp))

    def delete_budget(self, team: str, tag: tuple[str, str] | None = None) -> None:
        """Remove the cap of ``team`` (or of its runs tagged ``tag``); UsageError when there is none."""
        team = check_name(team, "team")
        tag_key, tag_value = check_tag(tag)
        table = schema.budgets
        with self._writing() as conn:
            done = conn.execute(sa.delete(table).where(table.c.team == team, table.c.tag_key == tag_key,
                                                       table.c.tag_value == tag_value))
            if done.rowcount == 0:
                raise UsageError(f"budget: no budget for {_budget_label(team, tag)} in {self.where}")

    def budgets(self, team: str | None = None) -> list[Budget]:
        """Every budget (of ``team``): by team, its own cap first, then by tag."""
        table = schema.budgets
        query = sa.select(table).order_by(table.c.team, table.c.tag_key, table.c.tag_value)
        if team is not None:
            query = query.where(table.c.team == check_name(team, "team"))
        with self._reading() as conn:
            return [_budget(row) for row in conn.execute(query)]

    # -- budget alerts ---------------------------------------------------------------------------------------------

    def claim_alert(self, team: str, tag: tuple[str, str] | None, month: str, threshold: int, spent_micro_usd: int,
                    now: datetime) -> bool:
        """Record that the alert for ``threshold`` percent of a budget in ``month`` (YYYY-MM) is being sent; False
        when it already was recorded (here or by another replica: the table's key decides), so it is sent once."""
        key = _alert_key(team, tag, month, threshold)
        if isinstance(spent_micro_usd, bool) or not isinstance(spent_micro_usd, int):
            raise UsageError(f"spent: {spent_micro_usd!r} must be whole micro-USD")
        with self._writing() as conn:
            return _insert_new(conn, schema.budget_alerts,
                               {**key, "at": _iso(now), "spent_micro_usd": spent_micro_usd, "delivered": ""})

    def alert_delivered(self, team: str, tag: tuple[str, str] | None, month: str, threshold: int,
                        outcome: str) -> None:
        """Record how a claimed alert's delivery went: '' delivered, else why not (one line, token-free)."""
        key = _alert_key(team, tag, month, threshold)
        first_line = (str(outcome).strip().splitlines() or [""])[0]
        table = schema.budget_alerts
        with self._writing() as conn:
            done = conn.execute(sa.update(table).where(*(table.c[name] == value for name, value in key.items()))
                                .values(delivered=redact(first_line)[:300]))
            if done.rowcount == 0:
                raise UsageError(f"alert: no {threshold}% alert claimed for {_budget_label(key['team'], tag)} "
                                 f"in {month}")


def _cap_micro(cap_usd: object, label: str) -> int:
    if isinstance(cap_usd, bool) or not isinstance(cap_usd, (int, float, Decimal)):
        raise UsageError(f"budget: {label}: {cap_usd!r} is not an amount in USD")
    finite = cap_usd.is_finite() if isinstance(cap_usd, Decimal) else not isinstance(cap_usd, float) \
        or math.isfinite(cap_usd)
    if not finite:
        raise UsageError(f"budget: {label}: {cap_usd!r} is not a finite amount")
    cap_micro = money.micro(cap_usd)
    if cap_micro <= 0:
        raise UsageError(f"budget: {label}: the monthly cap must be more than $0 (got {cap_usd!r})")
    if cap_micro > _MAX_MICRO:
        raise UsageError(f"budget: {label}: {cap_usd!r} is more than can be stored")
    return cap_micro


def _alert_key(team: str, tag: tuple[str, str] | None, month: str, threshold: int) -> dict[str, Any]:
    tag_key, tag_value = check_tag(tag)
    if not isinstance(month, str) or not _MONTH.fullmatch(month):
        raise UsageError(f"month: {month!r} is not a month (YYYY-MM)")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise UsageError(f"threshold: {threshold!r} must be a whole percent of at least 1")
    return {"team": check_name(team, "team"), "tag_key": tag_key, "tag_value": tag_value, "month": month,
            "threshold": threshold}
