"""`gpuarb server`: run the team server, and manage its tokens, budgets and webhooks (on the server's host, with
its database: ``GPUARB_DATABASE_URL``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from arbitrage import app as usecases
from arbitrage.cli.common import TYPER_SETTINGS, TableOrJson, TableOrJsonOption, guarded, say
from arbitrage.money import format_amount

_TEAM = typer.Option("--team", help="The team (lowercase letters, digits, '.', '_', '-').")


@guarded
def start(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    backend: Annotated[str, typer.Option("--backend", "-b", help="What runs launch with: skypilot or local.")]
    = "skypilot",
    workers: Annotated[int, typer.Option("--workers", min=1, max=256, help="Runs this replica supervises at once.")]
    = 8,
    supervise: Annotated[bool, typer.Option("--supervise/--no-supervise",
                                            help="Supervise runs here (off: an API-only replica).")] = True,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=0.05, max=3600, hidden=True)] = 10.0,
    heartbeat_seconds: Annotated[float, typer.Option("--heartbeat-seconds", min=0.05, max=600, hidden=True)] = 10.0,
    stale_seconds: Annotated[float, typer.Option("--stale-seconds", min=0.5, max=3600, hidden=True)] = 60.0,
    claim_seconds: Annotated[float, typer.Option("--claim-seconds", min=0.05, max=600, hidden=True)] = 5.0,
    budget_seconds: Annotated[float, typer.Option("--budget-seconds", min=0.05, max=3600, hidden=True)] = 60.0,
) -> None:
    """Serve the API (/api/v1, schema at /openapi.json) and the pages; workers supervise every submitted run."""
    import uvicorn

    from arbitrage.server.api import ServerConfig, create_app

    if backend not in usecases.backend_names():
        from arbitrage.errors import UsageError

        raise UsageError(f"--backend: unknown backend {backend!r} ({', '.join(usecases.backend_names())})")
    ledger = usecases.open_ledger()  # migrate (and fail on a bad database) before listening
    say(f"gpuarb server on http://{host}:{port} (database {ledger.path}; backend {backend}; "
        f"{'supervising with ' + str(workers) + ' workers' if supervise else 'not supervising'})")
    config = ServerConfig(backend=backend, supervise=supervise, workers=workers, poll_seconds=poll_seconds,
                          heartbeat_seconds=heartbeat_seconds, stale_seconds=stale_seconds,
                          claim_seconds=claim_seconds, budget_seconds=budget_seconds)
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", access_log=False)


@guarded
def token_create(
    team: Annotated[str, _TEAM],
    name: Annotated[str, typer.Option("--name", help="The account: a person or a CI pipeline (e.g. github-ci).")],
    role: Annotated[str, typer.Option("--role", help="admin, member or ci.")] = "ci",
    expires_days: Annotated[float | None, typer.Option("--expires-days", help="Days until it stops working "
                                                                                "(default: never).")] = None,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Make a bearer token for an account (created with its team if new); the token is shown only this once."""
    issued = usecases.issue_token(team, name, role, expires_days=expires_days)
    info = issued.info
    if fmt is TableOrJson.json:
        typer.echo(json.dumps({"token": issued.token, "id": info.id, "team": info.team, "name": info.name,
                               "role": info.role, "expires_at": info.expires_at.isoformat() if info.expires_at
                               else None}, indent=2))
        return
    typer.echo(issued.token)
    say(f"token {info.id} for {info.name} ({info.role}) in team {info.team}, "
        f"{'expires ' + info.expires_at.isoformat() if info.expires_at else 'never expires'}; shown only now: "
        "store it as a CI secret (GPUARB_TOKEN)")


@guarded
def token_list(team: Annotated[str | None, typer.Option("--team")] = None,
               fmt: TableOrJsonOption = TableOrJson.table) -> None:
    """List tokens (their ids, never their secrets), newest first."""
    from arbitrage.texttable import TextTable

    with usecases.open_accounts() as accounts:
        found = accounts.tokens(team)
    rows = [{"id": t.id, "team": t.team, "name": t.name, "role": t.role, "created_at": t.created_at.isoformat(),
             "expires_at": t.expires_at.isoformat() if t.expires_at else None,
             "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
             "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None} for t in found]
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no tokens yet: `gpuarb server token create --team TEAM --name NAME --role ci`")
        return
    table = TextTable()
    for header in ("Id", "Team", "Name", "Role", "Created", "Expires", "Revoked", "Last used"):
        table.add_column(header)
    for r in rows:
        table.add_row(r["id"], r["team"], r["name"], r["role"], r["created_at"], r["expires_at"] or "never",
                      r["revoked_at"] or "-", r["last_used_at"] or "-")
    typer.echo(table.render())


@guarded
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (from `token list`).")]) -> None:
    """Revoke a token: every request with it is refused from now on."""
    with usecases.open_accounts() as accounts:
        info = accounts.revoke(token_id, usecases.utcnow())
    typer.echo(f"token {info.id} ({info.name}, team {info.team}) revoked")


@guarded
def budget_set(
    team: Annotated[str, _TEAM],
    monthly_usd: Annotated[float, typer.Option("--monthly-usd", help="The cap for a calendar month (UTC), USD.")],
    tag: Annotated[str | None, typer.Option("--tag", help="Only the team's runs with this tag, KEY=VALUE.")] = None,
    fmt: TableOrJsonOption = TableOrJson.table,
) -> None:
    """Set a team's monthly cap (or its cap for one tag): checked at submission and enforced while runs go."""
    burn = usecases.set_team_budget(team, monthly_usd, tag)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps(burn.record(), indent=2))
        return
    typer.echo(f"{burn.label}: {format_amount(burn.cap_usd)} a month; {format_amount(burn.spent_usd)} spent in "
               f"{burn.month} ({burn.percent:.0f}%)")


@guarded
def budget_list(team: Annotated[str | None, typer.Option("--team")] = None,
                fmt: TableOrJsonOption = TableOrJson.table) -> None:
    """Every monthly cap with this month's spend."""
    from arbitrage.texttable import TextTable

    burns = usecases.team_budgets(team)
    if fmt is TableOrJson.json:
        typer.echo(json.dumps([b.record() for b in burns], indent=2))
        return
    if not burns:
        typer.echo("no budgets yet: `gpuarb server budget set --team TEAM --monthly-usd N`")
        return
    table = TextTable()
    for header, justify in (("Budget", "left"), ("Month", "left"), ("Cap", "right"), ("Spent", "right"),
                            ("Used", "right"), ("Live runs", "right")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for b in burns:
        table.add_row(b.label, b.month, format_amount(b.cap_usd), format_amount(b.spent_usd), f"{b.percent:.0f}%",
                      len(b.live_runs))
    typer.echo(table.render())


@guarded
def webhook_set(team: Annotated[str, _TEAM],
                url: Annotated[str | None, typer.Option("--url", help="Slack-compatible incoming webhook; omit to "
                                                                        "remove.")] = None) -> None:
    """Where a team's budget alerts (50%, 80%, 100% of a cap) are posted."""
    with usecases.open_accounts() as accounts:
        accounts.ensure_team(team, usecases.utcnow())
        accounts.set_webhook(team, url)
    typer.echo(f"team {team}: budget alerts {'go to the webhook set' if url else 'are not posted anywhere'}")


def register(app: typer.Typer) -> None:
    server = typer.Typer(name="server", help="The team server: serve, and manage its tokens and budgets.",
                         **TYPER_SETTINGS)
    server.command("start")(start)
    token = typer.Typer(name="token", help="Bearer tokens for people and CI.", **TYPER_SETTINGS)
    token.command("create")(token_create)
    token.command("list")(token_list)
    token.command("revoke")(token_revoke)
    budget = typer.Typer(name="budget", help="Monthly caps per team and per tag.", **TYPER_SETTINGS)
    budget.command("set")(budget_set)
    budget.command("list")(budget_list)
    webhook = typer.Typer(name="webhook", help="Where budget alerts go.", **TYPER_SETTINGS)
    webhook.command("set")(webhook_set)
    server.add_typer(token, name="token")
    server.add_typer(budget, name="budget")
    server.add_typer(webhook, name="webhook")
    app.add_typer(server, name="server")
