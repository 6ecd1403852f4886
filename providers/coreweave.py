"""CoreWeave offers from its published price list (CoreWeave has no public price API).

CoreWeave publishes list prices at https://www.coreweave.com/pricing and nothing machine-readable, so
this adapter reads a dated copy of that list:

* by default, the CoreWeave rows of the bundled snapshot (``arbitrage/data/snapshot.csv``), which
  ``scripts/build_snapshot.py`` builds from the cited, hand-copied ``data/price-sources/coreweave.csv``;
* or, when ``GPUARB_COREWEAVE_PRICES`` names a file, that file instead: a CSV with the columns of
  ``data/price-sources/coreweave.csv`` (``provider,region,zone,instance_type,accelerator,gpus_per_node,
  gpu_memory_gb,vcpus,ram_gb,on_demand_usd_per_hour,spot_usd_per_hour,source,as_of``; ``notes`` optional).
  Use it after re-reading the public page, or for contracted rates. Every row needs ``source`` and
  ``as_of``, and at least one price.

Source label: the offers keep ``source="snapshot"``, the ``as_of`` date of their row (the day the list
was read), and ``price_ref`` the row's citation, which starts with the published page. ``live`` would
claim a fresh answer from CoreWeave, and ``cache`` a stored copy of one; neither is true of a list read
by hand on a given day, which is what ``snapshot`` means. So a plan's provenance line reads
"coreweave: snapshot as of 2026-09-20", as it would without this adapter.

No credentials are needed. ``ttl_seconds`` is 0: the file is local and re-read on every use, never cached
(a cached copy would be relabelled ``cache``). A malformed row, a non-CoreWeave row or a missing file is a
``ProviderError`` naming the file and line; GPUs the fact tables do not know are skipped, as in the
snapshot.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from arbitrage.errors import DataError
from arbitrage.offers import Offer
from arbitrage.plural import noun
from providers.base import FetchContext, ProviderError

NAME = "coreweave"
PRICES_ENV = "GPUARB_COREWEAVE_PRICES"
PUBLISHED_PAGE = "https://www.coreweave.com/pricing"
REQUIRED_COLUMNS = ("provider", "region", "zone", "instance_type", "accelerator", "gpus_per_node", "gpu_memory_gb",
                    "vcpus", "ram_gb", "on_demand_usd_per_hour", "spot_usd_per_hour", "source", "as_of")


def bundled_offers(ctx: FetchContext) -> list[Offer]:
    """The CoreWeave rows of the bundled snapshot (built from data/price-sources/coreweave.csv).

    Only the header and the CoreWeave lines are parsed: this runs on every `plan` in auto mode.
    """
    from importlib import resources

    from providers.snapshot import parse_snapshot

    text = (resources.files("arbitrage") / "data" / "snapshot.csv").read_text(encoding="utf-8")
    header, _, body = text.partition("\n")
    lines = [line for line in body.splitlines() if line.startswith(f"{NAME},")]
    return parse_snapshot("\n".join([header, *lines]), ctx.facts, "arbitrage/data/snapshot.csv (coreweave rows)")


def parse_price_list(text: str, ctx: FetchContext, label: str) -> list[Offer]:
    """A price-sources CSV (the published list's columns) -> offers; raises ProviderError naming file:line."""
    from providers.skypilot_catalog import SNAPSHOT_COLUMNS, convert_manual
    from providers.snapshot import parse_snapshot

    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ProviderError(NAME, f"{label}: missing {noun(len(missing), 'column')} {', '.join(missing)}")
    rows = list(reader)
    for lineno, row in enumerate(rows, start=2):
        if any(row.get(c) is None for c in REQUIRED_COLUMNS):
            raise ProviderError(NAME, f"{label}:{lineno}: fewer fields than the header")
        if row["provider"].strip() != NAME:
            raise ProviderError(NAME, f"{label}:{lineno}: provider is {row['provider']!r}, expected {NAME!r}")
    try:
        converted = convert_manual(rows, label)
    except ValueError as exc:  # convert_manual names file:line, except for a malformed size or memory
        message = " ".join(str(exc).split())
        raise ProviderError(NAME, message if message.startswith(label) else f"{label}: {message}") from None
    if not converted:
        raise ProviderError(NAME, f"{label}: no price rows")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SNAPSHOT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(converted)
    try:
        return parse_snapshot(buffer.getvalue(), ctx.facts, label)
    except DataError as exc:
        raise ProviderError(NAME, str(exc)) from None


class CoreWeaveAdapter:
    """CoreWeave's published list prices, from the bundled copy or the user's own file (module docstring)."""

    name = NAME
    ttl_seconds = 0  # a local file: read every time, never cached
    credentials_hint = (f"none needed: published price list ({PUBLISHED_PAGE}, bundled copy; "
                        f"{PRICES_ENV}=<csv> to use your own)")
    # Not a price API: `gpuarb providers` can say "published list" rather than "yes".
    published_list = True

    def has_credentials(self, ctx: FetchContext) -> bool:
        """A published list needs no credentials."""
        return True

    async def fetch(self, ctx: FetchContext) -> list[Offer]:
        """The user's price file when GPUARB_COREWEAVE_PRICES is set, else the bundled published list."""
        path_text = ctx.env.get(PRICES_ENV, "").strip()
        if not path_text:
            return bundled_offers(ctx)
        path = Path(path_text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProviderError(NAME, f"{PRICES_ENV}={path}: cannot read ({type(exc).__name__}: {exc})") from None
        return parse_price_list(text, ctx, str(path))


ADAPTER = CoreWeaveAdapter()
