"""On-disk offer cache, one JSON file per provider, written atomically and only after a good fetch.

Location: ``arbitrage.paths.cache_dir`` ($GPUARB_CACHE_DIR, else $XDG_CACHE_HOME/gpuarb, else ~/.cache/gpuarb).
A failed fetch is remembered (not the offers, just when and why) in a note beside the offers file
(``offers-<provider>.failure.json``), so offline runs do not retry it on every command and the offers file is only
ever replaced by a good fetch.

The files are untrusted input: a file that is not a regular file (a link to /dev/zero), over MAX_FILE_BYTES, not
JSON, from another schema, or with an offer that is not one (null, a string price, no GPUs, a price that is not a
finite number above zero) makes the whole entry ignored, with the reason (``inspect``) for one warning; it is left
as it is until a good fetch replaces it. Timestamps in the future count as stale (``age_seconds``). The prices that
pass go through the same quality gate as live answers (providers/fetch.py).

The folder also holds the offline state (``offline-state.json``, ``read_offline`` / ``write_offline``): the providers
whose live fetches keep failing the same way, since when, so that a pause offline is reported in full once and in one
short line after that (providers/fetch.py ``notices``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from arbitrage import paths
from arbitrage.offers import Offer

SCHEMA = 1
MAX_FILE_BYTES = 64 << 20  # a provider's whole catalog is a few MB
MAX_CLOCK_SKEW_S = 300.0  # a fetch time this far ahead of now is not believed


@dataclass(frozen=True)
class CacheEntry:
    """A provider's last good fetch (offers marked source='cache') and its last failure, if any."""

    provider: str
    fetched_at: datetime | None
    offers: tuple[Offer, ...]
    failed_at: datetime | None = None
    failure: str | None = None

    def age_seconds(self, now: datetime) -> float | None:
        """Seconds since the last good fetch (infinite when it claims to be in the future), or None if never."""
        return _age(self.fetched_at, now)

    def failure_age_seconds(self, now: datetime) -> float | None:
        """Seconds since the last failed fetch (infinite when it claims to be in the future), or None if never."""
        return _age(self.failed_at, now)


def _age(when: datetime | None, now: datetime) -> float | None:
    if when is None:
        return None
    age = (now - when).total_seconds()
    return math.inf if age < -MAX_CLOCK_SKEW_S else max(0.0, age)


def _path(directory: Path, provider: str) -> Path:
    return directory / f"offers-{provider}.json"


def _failure_path(directory: Path, provider: str) -> Path:
    return directory / f"offers-{provider}.failure.json"


class _Corrupt(ValueError):
    """Why a cache file cannot be used."""


def _read_json(path: Path) -> Any:
    """A JSON document from a regular file of at most MAX_FILE_BYTES; FileNotFoundError when absent."""
    info = path.stat()  # follows links: a link to /dev/zero is a character device
    if not stat.S_ISREG(info.st_mode):
        raise _Corrupt("not a regular file")
    with open(path, "rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _Corrupt(f"over {MAX_FILE_BYTES >> 20} MiB")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Corrupt(f"not JSON ({type(exc).__name__})") from None


def _text(value: Any, *, optional: bool = False) -> bool:
    return (optional and value is None) or isinstance(value, str)


def _real(value: Any, *, optional: bool = False, positive: bool = False) -> bool:
    if optional and value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value > 0 if positive else value >= 0


# Offer fields and what a stored value must be; fields not listed here (added later) are taken as stored.
_CHECKS: dict[str, Any] = {
    "provider": _text, "region": _text, "instance_type": _text, "accelerator": _text, "interconnect": _text,
    "as_of": _text, "price_ref": _text, "gpu_model": _text, "country": _text, "continent": _text,
    "zone": lambda v: _text(v, optional=True),
    "gpus_per_node": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1024,
    "gpu_memory_gb": _real, "interconnect_gbps": _real,
    "vcpus": lambda v: _real(v, optional=True), "ram_gb": lambda v: _real(v, optional=True),
    "on_demand_usd_per_hour": lambda v: _real(v, optional=True, positive=True),
    "spot_usd_per_hour": lambda v: _real(v, optional=True, positive=True),
    "as_of_estimated": lambda v: isinstance(v, bool),
    "available": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "host_reliability": lambda v: v is None or (_real(v) and v <= 1),
}
_REQUIRED = ("provider", "region", "instance_type", "accelerator", "gpus_per_node", "gpu_memory_gb",
             "interconnect", "interconnect_gbps", "as_of", "price_ref")


def _offer(raw: Any, provider: str, i: int) -> Offer:
    """One stored offer, checked field by field; _Corrupt naming the offer and field otherwise."""
    if not isinstance(raw, dict):
        raise _Corrupt(f"offer {i} is {type(raw).__name__}, not an object")
    fields = {f.name for f in dataclasses.fields(Offer)}
    for name in _REQUIRED:
        if name not in raw:
            raise _Corrupt(f"offer {i}: {name} is missing")
    kept: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in fields or name == "source":
            continue
        check = _CHECKS.get(name, lambda v: True)
        if not check(value):
            raise _Corrupt(f"offer {i}: {name} is {json.dumps(value)[:40]}")
        kept[name] = value
    if kept["provider"] != provider:
        raise _Corrupt(f"offer {i}: provider is {kept['provider']!r}")
    try:
        return Offer(**{**kept, "source": "cache"})
    except (TypeError, ValueError) as exc:
        raise _Corrupt(f"offer {i}: {exc}") from None


def _storable(offer: Offer, provider: str) -> bool:
    """Whether an offer would read back (an adapter's offer with a NaN or a stray field is not stored)."""
    try:
        _offer(dataclasses.asdict(offer), provider, 0)
    except _Corrupt:
        return False
    return True


def _when(text: Any, what: str) -> datetime | None:
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise _Corrupt(f"{what} is {json.dumps(text)[:40]}")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise _Corrupt(f"{what} {text[:40]!r} is not a time") from None
    if stamp.tzinfo is None:
        raise _Corrupt(f"{what} {text[:40]!r} has no timezone")
    return stamp


def inspect(directory: Path, provider: str) -> tuple[CacheEntry | None, str | None]:
    """(entry, problem): the provider's cache entry, or None with the one-line reason the file is ignored
    (problem is None when there is simply no file)."""
    path = _path(directory, provider)
    try:
        raw = _read_json(path)
        if not isinstance(raw, dict):
            raise _Corrupt(f"holds {type(raw).__name__}, not an object")
        if raw.get("schema") != SCHEMA:
            raise _Corrupt(f"schema {json.dumps(raw.get('schema'))[:20]}, this gpuarb reads {SCHEMA}")
        if raw.get("provider") != provider:
            raise _Corrupt(f"written for provider {json.dumps(raw.get('provider'))[:40]}")
        offers_raw = raw.get("offers", [])
        if not isinstance(offers_raw, list):
            raise _Corrupt("offers is not a list")
        offers = tuple(_offer(o, provider, i) for i, o in enumerate(offers_raw))
        failed_at, failure = _when(raw.get("failed_at"), "failed_at"), raw.get("failure")
        note_at, note = _failure_note(directory, provider)
        if note_at is not None and (failed_at is None or note_at > failed_at):
            failed_at, failure = note_at, note
        return CacheEntry(provider=provider, fetched_at=_when(raw.get("fetched_at"), "fetched_at"), offers=offers,
                          failed_at=failed_at, failure=failure if isinstance(failure, str) else None), None
    except FileNotFoundError:
        return _failure_only(directory, provider), None
    except _Corrupt as exc:
        return _failure_only(directory, provider), f"cache file {path} ignored: {exc}"
    except OSError as exc:
        return _failure_only(directory, provider), f"cache file {path} ignored: cannot read it ({exc.strerror or exc})"


def _failure_only(directory: Path, provider: str) -> CacheEntry | None:
    """No usable offers, but the last failure's note (so `auto` still pauses after it); None without a note."""
    note_at, note = _failure_note(directory, provider)
    if note_at is None:
        return None
    return CacheEntry(provider=provider, fetched_at=None, offers=(), failed_at=note_at, failure=note)


def _failure_note(directory: Path, provider: str) -> tuple[datetime | None, str | None]:
    """The last failed fetch's note (time, reason), or (None, None) when there is none or it is unreadable."""
    try:
        raw = _read_json(_failure_path(directory, provider))
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA or not isinstance(raw.get("failure"), str):
            return None, None
        return _when(raw.get("failed_at"), "failed_at"), raw["failure"][:500]
    except (OSError, ValueError):
        return None, None


def read(directory: Path, provider: str) -> CacheEntry | None:
    """The cache entry for a provider; None when absent or unusable (see ``inspect`` for why)."""
    return inspect(directory, provider)[0]


def _replace(path: Path, payload: dict[str, Any]) -> None:
    """Replace ``path`` atomically with a JSON document (readers see the old file or the new one, never half)."""
    paths.private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".json", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_offers(directory: Path, provider: str, offers: list[Offer], fetched_at: datetime) -> None:
    """Replace the provider's cache with a good fetch (its failure note goes: this answer is newer)."""
    _replace(_path(directory, provider), {
        "schema": SCHEMA, "provider": provider, "fetched_at": fetched_at.isoformat(),
        "offers": [dataclasses.asdict(o) for o in offers if _storable(o, provider)], "failed_at": None,
        "failure": None})
    _failure_path(directory, provider).unlink(missing_ok=True)


def record_failure(directory: Path, provider: str, when: datetime, reason: str,
                   previous: CacheEntry | None = None) -> None:
    """Remember a failed fetch in the note beside the offers file, which stays untouched (good, corrupt or absent).

    ``previous`` is accepted for callers written before the note existed; nothing is taken from it.
    """
    _replace(_failure_path(directory, provider), {"schema": SCHEMA, "provider": provider,
                                                  "failed_at": when.isoformat(), "failure": reason[:500]})


# -- Offline state: which providers keep failing the same way, so later commands say it in one short line -----------

OFFLINE_STATE = "offline-state.json"


@dataclass(frozen=True)
class OfflineRecord:
    """A provider whose live fetches keep failing the same way (``kind``: network unreachable, timed out): since
    when, and the reason shown in full the first time."""

    kind: str
    since: datetime
    reason: str


def read_offline(directory: Path) -> dict[str, OfflineRecord]:
    """The offline state of the cache folder, by provider; empty when absent, unreadable or corrupt (a state file is
    only a way to say less: losing it means the next failure is reported in full again). Bad entries are skipped."""
    try:
        raw = _read_json(directory / OFFLINE_STATE)
    except (OSError, ValueError):
        return {}
    providers = raw.get("providers") if isinstance(raw, dict) and raw.get("schema") == SCHEMA else None
    if not isinstance(providers, dict):
        return {}
    out: dict[str, OfflineRecord] = {}
    for name, record in providers.items():
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            continue
        try:
            since = _when(record.get("since"), "since")
        except _Corrupt:
            continue
        reason = record.get("reason")
        if since is not None:
            out[str(name)[:100]] = OfflineRecord(record["kind"][:40], since,
                                                 reason[:500] if isinstance(reason, str) else "")
    return out


def write_offline(directory: Path, records: dict[str, OfflineRecord]) -> None:
    """Replace the offline state atomically (readers see the old state or the new one); no records: no file."""
    path = directory / OFFLINE_STATE
    if not records:
        path.unlink(missing_ok=True)
        return
    _replace(path, {"schema": SCHEMA, "providers": {
        name: {"kind": r.kind, "since": r.since.isoformat(timespec="seconds"), "reason": r.reason[:500]}
        for name, r in sorted(records.items())}})


def read_document(directory: Path, name: str) -> dict[str, Any] | None:
    """A non-offer cache document (``<name>.json``, e.g. the Spot Instance Advisor feed); None when absent/corrupt."""
    try:
        raw = _read_json(directory / f"{name}.json")
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) and raw.get("schema") == SCHEMA else None


def write_document(directory: Path, name: str, payload: dict[str, Any]) -> None:
    """Replace a non-offer cache document atomically (readers see the old file or the new one, never half)."""
    _replace(directory / f"{name}.json", {**payload, "schema": SCHEMA})
