"""Job files with secrets, sealed for the team server: encrypted and authenticated (Fernet: AES-128-CBC with
HMAC-SHA256, from ``cryptography``) with the server's key, so a run resumed after a restart launches with its
real ``secrets:`` and key-like ``envs:`` while the database holds no secret in the clear.

The key is ``$GPUARB_SECRET_KEY`` (32 url-safe base64 bytes, as `Fernet.generate_key()` makes; every replica of a
server needs the same one), else ``<data dir>/server-secret.key``, created 0600 on first use (one replica).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from arbitrage import paths
from arbitrage.errors import LedgerError, UsageError

ENV_KEY = "GPUARB_SECRET_KEY"
KEY_FILE = "server-secret.key"


def _fernet(env: Mapping[str, str] | None = None) -> Any:
    try:
        from cryptography.fernet import Fernet
    except ImportError:
        raise UsageError("sealing a job file's secrets needs the cryptography package "
                         "(pip install 'gpuarb[server]')") from None
    values = os.environ if env is None else env
    given = (values.get(ENV_KEY) or "").strip()
    if given:
        try:
            return Fernet(given.encode())
        except (ValueError, TypeError):
            raise UsageError(f"{ENV_KEY}: not a key (32 url-safe base64 bytes; make one with python -c "
                             "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')") \
                from None
    path = paths.private_dir(paths.data_dir(values)) / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
    try:
        return Fernet(path.read_bytes().strip())
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{path}: cannot read the server's key for sealed job files ({exc})") from None


def seal(text: str, env: Mapping[str, str] | None = None) -> str:
    """The job file's text, encrypted and authenticated with the server's key."""
    token: bytes = _fernet(env).encrypt(text.encode("utf-8"))
    return token.decode("ascii")


def unseal(sealed: str, env: Mapping[str, str] | None = None) -> str:
    """The job file back; LedgerError when the key is not the one it was sealed with, or it was altered."""
    from cryptography.fernet import InvalidToken

    try:
        plain: bytes = _fernet(env).decrypt(sealed.encode("ascii"))
    except (InvalidToken, ValueError):
        raise LedgerError(f"its sealed job file does not open with this server's key ({ENV_KEY} or {KEY_FILE} "
                          "changed, or the row was altered)") from None
    return plain.decode("utf-8")
