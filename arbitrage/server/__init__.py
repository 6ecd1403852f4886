"""The team server: `gpuarb server start`. CI pipelines and people submit runs with a token; the server's workers
supervise them to the end (failover, preemption, breakers, teardown) from the shared database; team budgets hold.

    api.py          the FastAPI application: the JSON API under /api/v1, the pages, auth and the audit log
    supervisor.py   the workers: claim unwatched runs from the database, supervise each, run the budget breaker
    pages.py        the server-rendered HTML pages (pure rendering)

Like the CLI, it only calls the use cases in ``arbitrage.app``.
"""
