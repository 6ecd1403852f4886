"""The team server's account store (arbitrage/accounts.py), on SQLite and PostgreSQL alike: tokens issued and
authenticated, every way a token is refused (one message, the right reason), secrets never stored, last-used
throttling, audit redaction, budgets, alerts claimed once across replicas, and bad input as UsageError."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from arbitrage.accounts import AUTH_MESSAGE, Accounts, IssuedToken, Principal, redact
from arbitrage.errors import AuthError, LedgerError, UsageError
from arbitrage.store import schema
from arbitrage.store.engine import open_database
from tests.conftest import NOW

TOKEN_SHAPE = re.compile(r"gpa_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def store(database_url: str) -> Iterator[Accounts]:
    with Accounts.open(database_url) as accounts:
        yield accounts


def _flip(char: str) -> str:
    return "B" if char == "A" else "A"


def _tampered(token: str) -> str:
    return token[:-1] + _flip(token[-1])


def _all_rows(database_url: str) -> Iterator[tuple[str, str, object]]:
    """(table, column, value) of every cell of every table."""
    database = open_database(database_url)
    with database.engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table)):
                for column, value in row._mapping.items():
                    yield name, column, value


# -- issue and authenticate --------------------------------------------------------------------------------------

def test_issue_then_authenticate(store: Accounts) -> None:
    issued = store.issue_token("ml", "ci-nightly", "ci", NOW, expires_in=timedelta(days=30))

    assert TOKEN_SHAPE.fullmatch(issued.token)
    assert issued.token.split("_")[1] == issued.info.id
    assert (issued.info.team, issued.info.name, issued.info.role) == ("ml", "ci-nightly", "ci")
    assert issued.info.created_at == NOW and issued.info.expires_at == NOW + timedelta(days=30)
    assert issued.token not in repr(issued)  # a log line of the record never shows the secret
    principal = store.authenticate(issued.token, NOW + timedelta(hours=1))
    assert principal == Principal(account_id=issued.info.account_id, name="ci-nightly", team="ml", role="ci",
                                  token_id=issued.info.id)
    assert store.team("ml") is not None and store.team("ml").created_at == NOW  # the team was created


def test_surrounding_whitespace_is_stripped(store: Accounts) -> None:
    issued = store.issue_token("ml", "alice", "member", NOW)

    assert store.authenticate(f"  {issued.token}\n", NOW).name == "alice"


def test_each_call_makes_a_new_token_for_the_same_account(store: Accounts) -> None:
    first = store.issue_token("ml", "alice", "member", NOW)
    second = store.issue_token("ml", "alice", "member", NOW + timedelta(minutes=5))

    assert first.info.account_id == second.info.account_id
    assert first.info.id != second.info.id and first.token != second.token
    assert store.authenticate(first.token, NOW).token_id == first.info.id
    assert store.authenticate(second.token, NOW).token_id == second.info.id
    assert [t.id for t in store.tokens("ml")] == [second.info.id, first.info.id]  # newest first


def test_an_existing_account_keeps_its_role(store: Accounts) -> None:
    store.issue_token("ml", "alice", "member", NOW)

    with pytest.raises(UsageError, match="already exists with role 'member'"):
        store.issue_token("ml", "alice", "admin", NOW)
    assert [t.role for t in store.tokens("ml")] == ["member"]  # the refused call left nothing behind


def test_a_disabled_account_gets_no_new_tokens(store: Accounts) -> None:
    store.issue_token("ml", "alice", "member", NOW)
    store.disable_account("ml", "alice", NOW)

    with pytest.raises(UsageError, match="disabled"):
        store.issue_token("ml", "alice", "member", NOW)


# -- every way a token is refused ----------------------------------------------------------------------------------

def _no_token(store: Accounts) -> str | None:
    return None


def _blank(store: Accounts) -> str | None:
    return "   "


def _garbage(store: Accounts) -> str | None:
    return "hunter2"


def _bad_id(store: Accounts) -> str | None:
    token = store.issue_token("ml", "alice", "member", NOW).token
    return "gpa_" + token[4:16].upper() + token[16:]  # hex, but not lowercase


def _short_secret(store: Accounts) -> str | None:
    return store.issue_token("ml", "alice", "member", NOW).token[:-1]


def _bearer_prefix(store: Accounts) -> str | None:
    return "Bearer " + store.issue_token("ml", "alice", "member", NOW).token


def _unknown_id(store: Accounts) -> str | None:
    token = store.issue_token("ml", "alice", "member", NOW).token
    return "gpa_000000000000" + token[16:]  # a real secret under an id that was never issued


def _tampered_secret(store: Accounts) -> str | None:
    return _tampered(store.issue_token("ml", "alice", "member", NOW).token)


def _expired(store: Accounts) -> str | None:
    return store.issue_token("ml", "alice", "member", NOW - timedelta(hours=2), expires_in=timedelta(hours=2)).token


def _revoked(store: Accounts) -> str | None:
    issued = store.issue_token("ml", "alice", "member", NOW)
    store.revoke(issued.info.id, NOW)
    return issued.token


def _disabled(store: Accounts) -> str | None:
    issued = store.issue_token("ml", "alice", "member", NOW)
    store.disable_account("ml", "alice", NOW)
    return issued.token


@pytest.mark.parametrize(("make_token", "reason"), [
    (_no_token, "missing"), (_blank, "missing"), (_garbage, "malformed"), (_bad_id, "malformed"),
    (_short_secret, "malformed"), (_bearer_prefix, "malformed"), (_unknown_id, "unknown"),
    (_tampered_secret, "tampered"), (_expired, "expired"), (_revoked, "revoked"), (_disabled, "disabled"),
])
def test_a_refused_token_says_the_same_thing_and_logs_why(
        store: Accounts, make_token: Callable[[Accounts], str | None], reason: str) -> None:
    token = make_token(store)

    with pytest.raises(AuthError) as refused:
        store.authenticate(token, NOW)
    assert str(refused.value) == AUTH_MESSAGE
    assert refused.value.reason == reason


def test_a_token_works_until_the_second_it_expires(store: Accounts) -> None:
    issued = store.issue_token("ml", "ci", "ci", NOW, expires_in=timedelta(hours=1))

    assert store.authenticate(issued.token, NOW + timedelta(minutes=59, seconds=59)).name == "ci"
    with pytest.raises(AuthError) as refused:
        store.authenticate(issued.token, NOW + timedelta(hours=1))
    assert refused.value.reason == "expired"


def test_revoking_twice_keeps_the_first_time(store: Accounts) -> None:
    issued = store.issue_token("ml", "alice", "member", NOW)

    assert store.revoke(issued.info.id, NOW).revoked_at == NOW
    assert store.revoke(issued.info.id, NOW + timedelta(days=1)).revoked_at == NOW
    with pytest.raises(UsageError, match="no token '0123456789ab'"):
        store.revoke("0123456789ab", NOW)
    with pytest.raises(UsageError, match="token id"):
        store.revoke(issued.token, NOW)  # the whole token is not its id


def test_disabling_one_account_leaves_the_others(store: Accounts) -> None:
    alice = store.issue_token("ml", "alice", "member", NOW)
    bob = store.issue_token("ml", "bob", "admin", NOW)

    assert store.disable_account("ml", "alice", NOW).disabled_at == NOW
    assert store.disable_account("ml", "alice", NOW + timedelta(hours=1)).disabled_at == NOW
    assert store.authenticate(bob.token, NOW).role == "admin"
    with pytest.raises(AuthError):
        store.authenticate(alice.token, NOW)
    with pytest.raises(UsageError, match="no account 'carol'"):
        store.disable_account("ml", "carol", NOW)


def test_tokens_lists_by_team_newest_first(store: Accounts) -> None:
    ml = store.issue_token("ml", "alice", "member", NOW)
    infra = store.issue_token("infra", "ci", "ci", NOW + timedelta(minutes=1))

    assert [t.id for t in store.tokens()] == [infra.info.id, ml.info.id]
    assert [t.id for t in store.tokens("ml")] == [ml.info.id]
    assert store.tokens("nobody") == []


# -- secrets are never stored ------------------------------------------------------------------------------------

def test_only_the_hash_of_a_secret_is_stored(store: Accounts, database_url: str) -> None:
    issued = [store.issue_token("ml", "alice", "member", NOW), store.issue_token("ml", "ci", "ci", NOW)]
    for token in issued:
        principal = store.authenticate(token.token, NOW)
        store.record_audit(NOW, method="GET", path=f"/v1/runs?token={token.token}", status=200,
                           principal=principal, token_id=principal.token_id, detail=f"Bearer {token.token}")
    store.record_audit(NOW, method="GET", path="/v1/runs", status=401, principal=None,
                       token_id=issued[0].token, detail=f"tampered: {_tampered(issued[0].token)}")

    database = open_database(database_url)
    with database.engine.connect() as conn:
        stored = {row.id: row.secret_sha256 for row in conn.execute(sa.select(schema.tokens))}
    for token in issued:
        secret = token.token.split("_", 2)[2]
        assert stored[token.info.id] == hashlib.sha256(secret.encode()).hexdigest()
        flipped_secret = _tampered(token.token).split("_", 2)[2]
        for table, column, value in _all_rows(database_url):
            assert secret not in str(value), f"{table}.{column} holds a token's secret"
            assert flipped_secret not in str(value), f"{table}.{column} holds a tampered token's secret"


# -- last used ---------------------------------------------------------------------------------------------------

def test_last_used_is_written_at_most_once_a_minute(store: Accounts) -> None:
    issued = store.issue_token("ml", "ci", "ci", NOW)

    def last_used() -> object:
        return next(t.last_used_at for t in store.tokens("ml") if t.id == issued.info.id)

    assert last_used() is None
    store.authenticate(issued.token, NOW)
    assert last_used() == NOW
    store.authenticate(issued.token, NOW + timedelta(seconds=59))
    assert last_used() == NOW
    store.authenticate(issued.token, NOW + timedelta(seconds=60))
    assert last_used() == NOW + timedelta(seconds=60)
    store.authenticate(issued.token, NOW + timedelta(seconds=90))
    assert last_used() == NOW + timedelta(seconds=60)


# -- audit ---------------------------------------------------------------------------------------------------------

def test_audit_cuts_tokens_to_their_id(store: Accounts) -> None:
    issued = store.issue_token("ml", "alice", "member", NOW)
    principal = store.authenticate(issued.token, NOW)
    token_id = issued.info.id

    entry = store.record_audit(NOW, method="POST", path=f"/v1/runs?access_token={issued.token}&x=1", status=201,
                               principal=principal, token_id=None, run_id="r-1", remote="10.0.0.7",
                               detail=f"header Authorization: Bearer {issued.token}")

    assert entry.path == f"/v1/runs?access_token=gpa_{token_id}_***&x=1"
    assert entry.detail == f"header Authorization: Bearer gpa_{token_id}_***"
    assert (entry.token_id, entry.account_id, entry.team) == (token_id, principal.account_id, "ml")
    assert store.audit() == [entry]


def test_audit_of_a_refused_request(store: Accounts) -> None:
    issued = store.issue_token("ml", "alice", "member", NOW)
    bad = _tampered(issued.token)

    refused = store.record_audit(NOW, method="GET", path="/v1/runs", status=401, principal=None,
                                 token_id=bad, detail=f"tampered {bad}")
    garbage = store.record_audit(NOW, method="GET", path="/v1/runs", status=401, principal=None,
                                 token_id="gpa_not-a-token", detail="malformed")

    assert refused.token_id == issued.info.id and refused.team is None
    assert refused.detail == f"tampered gpa_{issued.info.id}_***"
    assert garbage.token_id is None  # a token that did not parse has no id to keep
    assert [e.id for e in store.audit()] == [garbage.id, refused.id]


def test_audit_newest_first_by_team_and_limited(store: Accounts) -> None:
    ml = store.authenticate(store.issue_token("ml", "alice", "member", NOW).token, NOW)
    infra = store.authenticate(store.issue_token("infra", "bob", "member", NOW).token, NOW)
    for minute in range(3):
        store.record_audit(NOW + timedelta(minutes=minute), method="GET", path=f"/v1/runs/{minute}", status=200,
                           principal=ml, token_id=ml.token_id)
    store.record_audit(NOW, method="GET", path="/v1/spend", status=200, principal=infra, token_id=infra.token_id)

    assert [e.path for e in store.audit("ml")] == ["/v1/runs/2", "/v1/runs/1", "/v1/runs/0"]
    assert [e.path for e in store.audit("ml", limit=2)] == ["/v1/runs/2", "/v1/runs/1"]
    assert [e.path for e in store.audit("infra")] == ["/v1/spend"]
    assert len(store.audit()) == 4
    with pytest.raises(UsageError, match="limit"):
        store.audit(limit=0)


@pytest.mark.parametrize(("text", "shown"), [
    ("gpa_0123456789ab_" + "s" * 43, "gpa_0123456789ab_***"),
    ("?t=gpa_0123456789ab_a-b_c", "?t=gpa_0123456789ab_***"),  # a short or odd secret is cut too
    ("GPA_0123456789AB_" + "s" * 43, "gpa_***"),
    ("gpa_xyz_secret", "gpa_***"),
    ("/v1/tokens/gpa_0123456789ab", "/v1/tokens/gpa_0123456789ab"),  # an id alone is no secret
    ("gpa_0123456789ab_***", "gpa_0123456789ab_***"),  # cutting again changes nothing
    ("/v1/runs", "/v1/runs"),
])
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


# -- budgets -------------------------------------------------------------------------------------------------------

def test_budgets_round_trip_exactly(store: Accounts) -> None:
    team_cap = store.set_budget("ml", 1234.56, NOW)
    tag_cap = store.set_budget("ml", 0.1, NOW, tag=("model", "llama3"))

    assert team_cap.monthly_cap_micro_usd == 1_234_560_000 and team_cap.label == "team ml"
    assert tag_cap.monthly_cap_micro_usd == 100_000 and tag_cap.label == "team ml, tag model=llama3"
    assert store.budgets("ml") == [team_cap, tag_cap]
    assert store.budgets("ml")[0].cap_usd == 1234.56
    assert store.budgets("ml")[1].tag == ("model", "llama3")


def test_setting_a_budget_again_replaces_it_and_deleting_removes_it(store: Accounts) -> None:
    store.set_budget("ml", 100, NOW)
    store.set_budget("ml", 250.5, NOW + timedelta(days=1))
    store.set_budget("infra", 10, NOW, tag=("env", "prod"))

    assert [(b.team, b.monthly_cap_micro_usd, b.updated_at) for b in store.budgets("ml")] == \
        [("ml", 250_500_000, NOW + timedelta(days=1))]
    store.delete_budget("ml")
    assert store.budgets("ml") == []
    assert [b.label for b in store.budgets()] == ["team infra, tag env=prod"]
    with pytest.raises(UsageError, match="no budget for team ml"):
        store.delete_budget("ml")
    with pytest.raises(UsageError, match="no budget for team infra, tag env=dev"):
        store.delete_budget("infra", tag=("env", "dev"))


@pytest.mark.parametrize("cap", [0, -5, float("nan"), float("inf"), 0.0000001, True, "100"])
def test_a_budget_cap_must_be_a_positive_amount(store: Accounts, cap: object) -> None:
    with pytest.raises(UsageError, match="budget: team ml"):
        store.set_budget("ml", cap, NOW)  # type: ignore[arg-type]
    assert store.budgets() == []


@pytest.mark.parametrize("tag", [("", "x"), ("model", ""), ("a=b", "c"), (" model", "x"), ("model",)])
def test_a_budget_tag_must_be_a_key_and_a_value(store: Accounts, tag: tuple[str, ...]) -> None:
    with pytest.raises(UsageError, match="tag"):
        store.set_budget("ml", 10, NOW, tag=tag)  # type: ignore[arg-type]


# -- budget alerts -------------------------------------------------------------------------------------------------

def _alert_rows(database_url: str) -> list[tuple[object, ...]]:
    database = open_database(database_url)
    with database.engine.connect() as conn:
        table = schema.budget_alerts
        return [tuple(row) for row in conn.execute(
            sa.select(table.c.team, table.c.tag_key, table.c.tag_value, table.c.month, table.c.threshold,
                      table.c.spent_micro_usd, table.c.delivered).order_by(table.c.threshold))]


def test_an_alert_is_claimed_once(store: Accounts, database_url: str) -> None:
    assert store.claim_alert("ml", None, "2026-11", 80, 812_000_000, NOW) is True
    assert store.claim_alert("ml", None, "2026-11", 80, 815_000_000, NOW + timedelta(minutes=5)) is False
    assert store.claim_alert("ml", None, "2026-11", 100, 1_001_000_000, NOW) is True  # another threshold
    assert store.claim_alert("ml", ("model", "llama3"), "2026-11", 80, 90_000_000, NOW) is True  # another budget
    assert store.claim_alert("ml", None, "2026-12", 80, 812_000_000, NOW) is True  # another month

    with Accounts.open(database_url) as replica:
        assert replica.claim_alert("ml", None, "2026-11", 80, 812_000_000, NOW) is False
        assert replica.claim_alert("ml", None, "2026-11", 50, 600_000_000, NOW) is True
    assert store.claim_alert("ml", None, "2026-11", 50, 600_000_000, NOW) is False
    assert ("ml", "", "", "2026-11", 80, 812_000_000, "") in _alert_rows(database_url)  # the first claim's figures


def test_replicas_racing_for_an_alert_claim_it_once(database_url: str) -> None:
    Accounts.open(database_url).close()  # migrate once, before the race
    outcomes: list[bool] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def replica() -> None:
        try:
            with Accounts.open(database_url) as accounts:
                start.wait()
                outcomes.append(accounts.claim_alert("ml", None, "2026-11", 100, 1_000_000_000, NOW))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(outcomes) == [False] * 5 + [True]


def test_alert_delivery_is_recorded(store: Accounts, database_url: str) -> None:
    store.claim_alert("ml", None, "2026-11", 50, 500_000_000, NOW)
    store.claim_alert("ml", None, "2026-11", 80, 800_000_000, NOW)

    store.alert_delivered("ml", None, "2026-11", 50, "")
    store.alert_delivered("ml", None, "2026-11", 80, "webhook answered 500: internal error\nsecond line")

    assert [row[-1] for row in _alert_rows(database_url)] == ["", "webhook answered 500: internal error"]
    with pytest.raises(UsageError, match="no 100% alert claimed for team ml"):
        store.alert_delivered("ml", None, "2026-11", 100, "")


@pytest.mark.parametrize(("month", "threshold"), [("2026-13", 80), ("2026-1", 80), ("nov", 80), ("2026-11", 0),
                                                  ("2026-11", True)])
def test_an_alert_needs_a_month_and_a_threshold(store: Accounts, month: str, threshold: int) -> None:
    with pytest.raises(UsageError, match=r"^(month|threshold): "):
        store.claim_alert("ml", None, month, threshold, 1, NOW)


# -- teams, names, roles, webhooks -----------------------------------------------------------------------------------

def test_teams_and_webhooks(store: Accounts) -> None:
    assert store.team("ml") is None
    created = store.ensure_team("ml", NOW)
    assert (created.name, created.created_at, created.webhook_url) == ("ml", NOW, None)
    assert store.ensure_team("ml", NOW + timedelta(days=1)).created_at == NOW  # ensuring again changes nothing

    assert store.set_webhook("ml", "https://hooks.slack.com/services/T0/B0/x").webhook_url == \
        "https://hooks.slack.com/services/T0/B0/x"
    assert store.ensure_team("ml", NOW, webhook_url="http://alerts.internal:8080/gpuarb").webhook_url == \
        "http://alerts.internal:8080/gpuarb"
    assert store.set_webhook("ml", None).webhook_url is None
    with pytest.raises(UsageError, match="no team 'infra'"):
        store.set_webhook("infra", "https://example.com/hook")


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook", "https://", "javascript:alert(1)",
                                 "https://exa mple.com/", "https://example.com/\nx", ""])
def test_a_webhook_must_be_an_http_url(store: Accounts, url: str) -> None:
    store.ensure_team("ml", NOW)

    with pytest.raises(UsageError, match="webhook URL"):
        store.set_webhook("ml", url)
    with pytest.raises(UsageError, match="webhook URL"):
        store.ensure_team("ml", NOW, webhook_url=url)
    assert store.team("ml").webhook_url is None


@pytest.mark.parametrize(("team", "name", "field"), [
    ("ML", "alice", "team"), ("ml", "Alice", "account"), ("", "alice", "team"), ("ml", "", "account"),
    ("-ml", "alice", "team"), ("ml", ".alice", "account"), ("ml team", "alice", "team"), ("ml", "al/ice", "account"),
    ("m" * 65, "alice", "team"), ("ml\n", "alice", "team"),
])
def test_bad_names_are_usage_errors_naming_the_field(store: Accounts, team: str, name: str, field: str) -> None:
    with pytest.raises(UsageError, match=f"^{field}: "):
        store.issue_token(team, name, "member", NOW)
    assert store.tokens() == []


def test_names_may_use_dots_dashes_and_underscores(store: Accounts) -> None:
    issued = store.issue_token("ml-research.eu", "ci_nightly-2", "ci", NOW)

    assert isinstance(issued, IssuedToken) and store.authenticate(issued.token, NOW).team == "ml-research.eu"
    assert store.issue_token("m" * 64, "a", "admin", NOW).info.team == "m" * 64


@pytest.mark.parametrize("role", ["owner", "Admin", "", None])
def test_a_role_must_be_one_of_the_roles(store: Accounts, role: object) -> None:
    with pytest.raises(UsageError, match=r"^role: .* is not a role \(one of admin, member, ci\)$"):
        store.issue_token("ml", "alice", role, NOW)  # type: ignore[arg-type]


def test_an_expiry_must_be_in_the_future(store: Accounts) -> None:
    with pytest.raises(UsageError, match="expires in"):
        store.issue_token("ml", "alice", "member", NOW, expires_in=timedelta(0))


# -- database errors -------------------------------------------------------------------------------------------------

def test_a_database_error_is_a_ledger_error_naming_the_database(store: Accounts, database_url: str) -> None:
    database = open_database(database_url)
    with database.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit"))

    with pytest.raises(LedgerError) as failed:
        store.audit()
    assert str(failed.value).startswith(f"{store.where}: ")
    assert "\n" not in str(failed.value) and "SELECT" not in str(failed.value)
