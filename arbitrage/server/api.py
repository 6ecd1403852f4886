"""The team server's HTTP interface (FastAPI): the JSON API under ``/api/v1``, the pages, auth and the audit.

Every request but ``/healthz`` and the sign-in page carries a bearer token (``Authorization: Bearer gpa_...``; the
pages keep it in an HttpOnly cookie after sign-in). A refused token gets 401 with one message whatever was wrong;
a good token whose role may not do a thing gets 403; another team's run is 404, as if it did not exist. Every
request is written to the audit log (who, what, the status it got) with any token cut to its public id.

Errors are JSON ``{"error": {"type", "message", "exit_code"}}``: ``exit_code`` is the one the CLI would have
ended with, so a CLI talking to the server (``GPUARB_SERVER``) exits the same way.

    role     may
    ci       plan, submit, read the team's runs, logs, spend, exports and prices; stop the runs it submitted
    member   all of ci, and stop any of the team's runs
    admin    all of member, and set the team's budgets and webhook, and read the audit log
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from arbitrage import app as usecases
from arbitrage.errors import (
    AuthError,
    Forbidden,
    GpuarbError,
    LedgerError,
    NothingFeasible,
    OverBudget,
    SourceUnavailable,
    UsageError,
)

API = "/api/v1"
COOKIE = "gpuarb_token"
MAX_SPEC_BYTES = 256 * 1024
_RUN_IN_PATH = re.compile(r"^/(?:api/v1/)?runs/([^/]+)")
_ROLES_THAT_STOP_ANY = ("member", "admin")


@dataclass
class ServerConfig:
    """How a server runs: the backend runs launch on, and whether (and how often) its workers supervise."""

    backend: str = "skypilot"
    supervise: bool = True
    workers: int = 8  # runs supervised at once by this replica
    claim_seconds: float = 5.0  # how often unwatched runs are looked for
    budget_seconds: float = 60.0  # how often the team budget breaker runs
    poll_seconds: float = 10.0  # each supervised run's status poll
    heartbeat_seconds: float = 10.0  # how often a supervised run's heartbeat is written
    stale_seconds: float = 60.0  # a run whose heartbeat is this old has lost its worker: another one claims it
    backend_factory: Callable[[str], Any] | None = None  # tests: a backend by name (default: the registry)
    facts: Any = None  # the fact tables (default: the bundled ones, loaded at start)


class SpecBody(BaseModel):
    """A job file as the client read it: its text and the name it had there (for messages)."""

    spec_text: str = Field(max_length=MAX_SPEC_BYTES)
    spec_name: str = Field(default="job.yaml", max_length=500)
    objective: str = "cost"
    backend: str | None = None


class PlanBody(SpecBody):
    """`gpuarb plan` through the server: the job file and the plan command's own options."""

    top: int = Field(default=5, ge=0, le=10_000)
    format: str = "json"
    wide: bool = False
    source: str | None = None
    strict: bool = False


class BudgetBody(BaseModel):
    monthly_usd: float
    tag: str | None = None


_STATUS = ((Forbidden, 403), (AuthError, 401), (UsageError, 400), (OverBudget, 402), (NothingFeasible, 409),
           (SourceUnavailable, 503))


def _status_of(error: GpuarbError) -> int:
    if isinstance(error, LedgerError) and str(error).startswith("no run"):
        return 404
    return next((code for cls, code in _STATUS if isinstance(error, cls)), 500)


def error_body(error: GpuarbError, ledger_where: str = "") -> dict[str, Any]:
    """What a client is told of an error: its kind, one line, and the CLI's exit code for it. Anything shaped like
    a token is cut to its id, and the server's database (``ledger_where``: its file, or its URL naming host and
    user) is called "the team server's ledger"."""
    from arbitrage.accounts import redact

    message = redact(str(error))
    if ledger_where:
        message = message.replace(ledger_where, "the team server's ledger")
    return {"error": {"type": type(error).__name__, "message": message, "exit_code": error.exit_code}}


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else "malformed"
    return request.cookies.get(COOKIE)


def principal(request: Request) -> Any:
    """The request's account (its bearer token, or the pages' cookie); AuthError when refused."""
    token = _bearer(request)
    request.state.token = token
    try:
        who = usecases.authenticate(token)
    except AuthError as exc:
        request.state.auth_reason = exc.reason
        raise
    request.state.principal = who
    return who


Who = Annotated[Any, Depends(principal)]


def _may_stop(who: Any, run: Any) -> None:
    if who.role in _ROLES_THAT_STOP_ANY or run.submitted_by == who.name:
        return
    raise Forbidden(f"role {who.role} may stop only the runs it submitted; run {run.id} was submitted by "
                    f"{run.submitted_by or 'someone else'}")


def _admin(who: Any) -> None:
    if who.role != "admin":
        raise Forbidden(f"role {who.role} may not do this (admin only)")


def _tags(values: list[str]) -> dict[str, str]:
    from arbitrage.params import parse_tags

    return parse_tags(values)


def _since(text: str | None) -> datetime | None:
    from arbitrage.params import parse_since

    return parse_since(text, usecases.utcnow())


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The server's application (its workers start with it unless ``config.supervise`` is off)."""
    from contextlib import asynccontextmanager

    settings = config or ServerConfig()
    facts = settings.facts or usecases.load_facts()
    ledger_where = str(usecases.open_ledger().path)  # opening it migrates it, before the first request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Iterator[None]:  # type: ignore[misc]
        pool = None
        if settings.supervise:
            from arbitrage.server.supervisor import SupervisorPool

            pool = SupervisorPool(settings, facts)
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()

    api = FastAPI(title="gpuarb team server", version="1", lifespan=lifespan,
                  description="Plan, submit and watch GPU runs; team spend and budgets.")
    api.state.settings = settings

    @api.exception_handler(GpuarbError)
    async def _gpuarb_error(request: Request, exc: GpuarbError) -> Response:
        status = _status_of(exc)
        if not request.url.path.startswith(API) and request.url.path != "/healthz":
            from arbitrage.server import pages

            if status == 401:
                return RedirectResponse("/login", status_code=303)
            message = error_body(exc, ledger_where)["error"]["message"]
            return HTMLResponse(pages.error_page(_who_record(request), status, message), status_code=status)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc, ledger_where), status_code=status, headers=headers)

    @api.middleware("http")
    async def _audit(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        await run_in_threadpool(_record_audit, request, response.status_code)
        return response

    # -- the JSON API ------------------------------------------------------------------------------

    @api.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(f"{API}/whoami")
    def whoami(who: Who) -> dict[str, Any]:
        return {"team": who.team, "name": who.name, "role": who.role, "token_id": who.token_id}

    @api.post(f"{API}/plan")
    def plan(body: PlanBody, who: Who) -> dict[str, Any]:
        fmt = _choice(body.format, ("table", "json"), "format")
        text, verdict = usecases.plan_text(body.spec_text, body.spec_name, facts, objective=_objective(body),
                                           source=_source(body.source), top=body.top, fmt=fmt, wide=body.wide,
                                           strict=body.strict)
        return {"text": text, "error": None if verdict is None else error_body(verdict, ledger_where)["error"]}

    @api.post(f"{API}/runs")
    def submit(body: SpecBody, who: Who, response: Response,
               idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> dict[str, Any]:
        backend = body.backend or settings.backend
        if backend not in usecases.backend_names():
            raise UsageError(f"backend {backend!r}: the server launches with {', '.join(usecases.backend_names())}")
        done = usecases.submit_for_team(who, body.spec_text, body.spec_name, facts, backend=backend,
                                        idempotency_key=idempotency_key, objective=_objective(body))
        response.status_code = 201 if done.created else 200
        return {"run": done.run, "created": done.created}

    @api.get(f"{API}/runs")
    def runs(who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 20, since: str | None = None,
             tag: Annotated[list[str], Query()] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        ledger = usecases.open_ledger()
        found = usecases.recent_runs(ledger, limit=limit, since=_since(since), tags=_tags(list(tag)), team=who.team)
        return {"runs": found, "warnings": usecases.ledger_warnings(ledger), "ledger": f"team {who.team}"}

    @api.get(f"{API}/runs/{{ref}}")
    def run(ref: str, who: Who) -> dict[str, Any]:
        ledger = usecases.open_ledger()
        return usecases.run_summary(ledger, usecases.find_run(ledger, ref, team=who.team), detail=True)

    @api.post(f"{API}/runs/{{ref}}/stop")
    def stop(ref: str, who: Who) -> dict[str, Any]:
        ledger = usecases.open_ledger()
        target = usecases.find_run(ledger, ref, team=who.team)
        _may_stop(who, target)
        stopped = usecases.stop_run(target.id, team=who.team, by=f"{who.name} (team {who.team})")
        return {"run_id": stopped.run_id, "state": stopped.state, "torn_down": stopped.torn_down}

    @api.get(f"{API}/runs/{{ref}}/logs")
    def logs(ref: str, who: Who, tail: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> dict[str, Any]:
        found = usecases.run_logs(ref, team=who.team)
        lines = list(found.lines)[-tail:]
        record = found.record(lines)
        record["supervisor_log"] = None  # a path on the server: nothing a client can open
        return record

    @api.get(f"{API}/spend")
    def spend(who: Who, by: str = "team", since: str | None = None, format: str = "json",
              rise_percent: Annotated[float, Query(ge=0, le=1e6)] = 10.0,
              tag: Annotated[list[str], Query()] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        from arbitrage.report import spend as S

        fmt = _choice(format, ("table", "json", "csv", "markdown"), "format")
        warnings: list[str] = []
        found = usecases.spend(by, since=_since(since), tags=_tags(list(tag)), team=who.team, say=warnings.append,
                               rise_percent=rise_percent)
        where = f"team {who.team}"
        return {"text": S.spend_output(found.report, fmt, where), "runs": found.runs,
                "ledger_empty": found.ledger_empty, "ledger": where, "warnings": warnings}

    @api.get(f"{API}/export/focus")
    def focus(who: Who, since: str | None = None, granularity: str = "day", format: str = "json",
              tag: Annotated[list[str], Query()] = (),  # type: ignore[assignment]
              billing_account: Annotated[list[str], Query()] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        from arbitrage.report import focus as F

        fmt = _choice(format, ("csv", "json"), "format")
        warnings: list[str] = []
        export = usecases.focus_export(since=_since(since), tags=_tags(list(tag)),
                                       granularity=_choice(granularity, ("day", "hour"), "granularity"),
                                       billing_accounts=usecases.billing_accounts(list(billing_account)),
                                       team=who.team, say=warnings.append)
        text, n = F.focus_text(export.rows, fmt)
        return {"text": text, "count": n, "ledger": f"team {who.team}", "warnings": warnings}

    @api.get(f"{API}/prices")
    def prices(who: Who, gpu: Annotated[list[str], Query()] = (),  # type: ignore[assignment]
               count: Annotated[int | None, Query(ge=1, le=64)] = None, spot: bool | None = None,
               provider: Annotated[list[str], Query()] = (),  # type: ignore[assignment]
               region: Annotated[list[str], Query()] = (),  # type: ignore[assignment]
               format: str | None = None, source: str | None = None, strict: bool = False,
               limit: Annotated[int | None, Query(ge=0, le=100_000)] = None,
               quarantined: bool = False) -> dict[str, Any]:
        """Without ``format``: the price list document (`gpuarb prices --format json`); with it, what the CLI
        prints in that format and the error it ends with."""
        if format is None:
            return usecases.price_list_record(facts, gpus=list(gpu), count=count, spot=spot)
        text, error = usecases.price_output(
            facts, gpus=list(gpu), count=count, spot=spot, providers=list(provider), regions=list(region),
            source=_source(source), strict=strict, limit=limit, quarantined=quarantined,
            fmt=_choice(format, ("table", "json", "csv", "markdown"), "format"))
        return {"text": text, "error": None if error is None else error_body(error, ledger_where)["error"]}

    @api.get(f"{API}/budgets")
    def budgets(who: Who) -> dict[str, Any]:
        return {"budgets": [b.record() for b in usecases.team_budgets(who.team)]}

    @api.put(f"{API}/budgets")
    def set_budget(body: BudgetBody, who: Who) -> dict[str, Any]:
        _admin(who)
        return usecases.set_team_budget(who.team, body.monthly_usd, body.tag).record()

    @api.get(f"{API}/audit")
    def audit(who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        _admin(who)
        return {"audit": usecases.audit_log(who.team, limit)}

    # -- the pages ---------------------------------------------------------------------------------

    @api.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form() -> str:
        from arbitrage.server import pages

        return pages.login_page()

    @api.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()]) -> Response:
        from arbitrage.server import pages

        try:
            usecases.authenticate(token)
        except AuthError as exc:
            return HTMLResponse(pages.login_page(str(exc)), status_code=401)
        response = RedirectResponse("/", status_code=303)
        # HttpOnly (no script reads it), SameSite=Strict (no other site's form posts with it), Secure behind TLS.
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=8 * 3600,
                            secure=request.url.scheme == "https")
        return response

    @api.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    def runs_page(who: Who) -> str:
        from arbitrage.server import pages

        ledger = usecases.open_ledger()
        return pages.runs_page(_who(who), usecases.recent_runs(ledger, limit=200, team=who.team))

    @api.get("/runs/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(ref: str, who: Who) -> str:
        from arbitrage.server import pages

        ledger = usecases.open_ledger()
        return pages.run_page(_who(who), usecases.run_summary(ledger, usecases.find_run(ledger, ref, team=who.team),
                                                              detail=True))

    @api.post("/runs/{ref}/stop", include_in_schema=False)
    def stop_page(ref: str, who: Who) -> Response:
        stopped = stop(ref, who)
        return RedirectResponse(f"/runs/{stopped['run_id']}", status_code=303)

    @api.get("/spend", response_class=HTMLResponse, include_in_schema=False)
    def spend_page(who: Who) -> str:
        from arbitrage.server import pages

        return pages.spend_page(_who(who), usecases.team_monthly_spend(who.team))

    @api.get("/budgets", response_class=HTMLResponse, include_in_schema=False)
    def budgets_page(who: Who) -> str:
        from arbitrage.server import pages

        return pages.budgets_page(_who(who), [b.record() for b in usecases.team_budgets(who.team)])

    @api.get("/prices", response_class=HTMLResponse, include_in_schema=False)
    def prices_page(who: Who) -> str:
        from arbitrage.server import pages

        return pages.prices_page(_who(who), usecases.price_list_record(facts))

    @api.get("/robots.txt", response_class=PlainTextResponse, include_in_schema=False)
    def robots() -> str:
        return "User-agent: *\nDisallow: /\n"

    return api


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise UsageError(f"{name}: {value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def _source(value: str | None) -> Any:
    from arbitrage.params import Source

    return None if value is None else Source(_choice(value, tuple(s.value for s in Source), "source"))


def _objective(body: SpecBody) -> Any:
    from arbitrage.params import Objective

    try:
        return Objective(body.objective)
    except ValueError:
        raise UsageError(f"objective: {body.objective!r} is not one of cost, time") from None


def _who(who: Any) -> dict[str, str]:
    return {"team": who.team, "name": who.name, "role": who.role}


def _who_record(request: Request) -> dict[str, str] | None:
    who = getattr(request.state, "principal", None)
    return None if who is None else _who(who)


def _record_audit(request: Request, status: int) -> None:
    """One audit row per request: who (or the refused token's id), what, and the status it got."""
    if request.url.path == "/healthz":
        return
    from arbitrage.accounts import token_id_of

    who = getattr(request.state, "principal", None)
    token = getattr(request.state, "token", None)
    match = _RUN_IN_PATH.match(request.url.path)
    reason = getattr(request.state, "auth_reason", "")
    usecases.record_audit(method=request.method, path=request.url.path, status=status, principal=who,
                          token_id=token_id_of(token) if token else None, run_id=match.group(1) if match else None,
                          remote=request.client.host if request.client else None,
                          detail=f"refused: {reason}" if reason else "")
