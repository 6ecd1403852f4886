"""On-disk offer cache, one JSON file per provider, written atomically and only after a good fetch.

Location: ``arbitrage.paths.cache_dir`` ($GPUARB_CACHE_DIR, else $XDG_CACHE_HOME/gpuarb, else ~/.cache/gpuarb).
A failed fetch is remembered (not the offers, just when and why) so offline runs do not retry it on every command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from arbitrage.offers import Offer

SCHEMA = 1


@dataclass(frozen=True)
class CacheEntry:
    """A provider's last good fetch (offers marked source='cache') and its last failure, if any."""

    provider: str
    fetched_at: datetime | None
    offers: tuple[Offer, ...]
    failed_at: datetime | None = None
    failure: str | None = None

    def age_seconds(self, now: datetime) -> float | None:
        """Seconds since the last good fetch, or None if there never was one."""
        return None if self.fetched_at is None else (now - self.fetched_at).total_seconds()


def _path(directory: Path, provider: str) -> Path:
    return directory / f"offers-{provider}.json"


def read(directory: Path, provider: str) -> CacheEntry | None:
    """The cache entry for a provider; None when absent or unreadable (a corrupt file is ignored)."""
    path = _path(directory, provider)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("schema") != SCHEMA or raw.get("provider") != provider:
            return None
        fields = {f.name for f in dataclasses.fields(Offer)}
        offers = tuple(Offer(**{**{k: v for k, v in o.items() if k in fields}, "source": "cache"})
                       for o in raw.get("offers", []))
        return CacheEntry(
            provider=provider,
            fetched_at=_when(raw.get("fetched_at")),
            offers=offers,
            failed_at=_when(raw.get("failed_at")),
            failure=raw.get("failure"),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _when(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _write(directory: Path, provider: str, *, fetched_at: datetime | None, offers: tuple[Offer, ...] | list[Offer],
           failed_at: datetime | None = None, failure: str | None = None) -> None:
    """Replace the provider's cache file atomically: readers see the old file or the new one, never half."""
    payload = {
        "schema": SCHEMA, "provider": provider, "fetched_at": fetched_at.isoformat() if fetched_at else None,
        "offers": [dataclasses.asdict(o) for o in offers],
        "failed_at": failed_at.isoformat() if failed_at else None, "failure": failure,
    }
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".offers-{provider}-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, _path(directory, provider))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_offers(directory: Path, provider: str, offers: list[Offer], fetched_at: datetime) -> None:
    """Replace the provider's cache with a good fetch."""
    _write(directory, provider, fetched_at=fetched_at, offers=offers)


def record_failure(directory: Path, provider: str, when: datetime, reason: str,
                   previous: CacheEntry | None) -> None:
    """Remember a failed fetch next to the last good offers (``previous``, as read), which stay untouched."""
    kept = previous if previous is not None and previous.fetched_at is not None else None
    # Stored as fetched (source "live"); read() marks them "cache".
    offers = [dataclasses.replace(o, source="live") for o in kept.offers] if kept else []
    _write(directory, provider, fetched_at=kept.fetched_at if kept else None, offers=offers,
           failed_at=when, failure=reason)
