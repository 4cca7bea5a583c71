"""The key that seals compaction summaries, and sealing and opening them.

A compaction item carries its summary encrypted and authenticated (Fernet: AES-CBC with an
HMAC-SHA256) under a key only the server holds, so a client can pass it back but can neither read
nor forge one. The key lives in a file beside the SQLite store, so items outlive restarts.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from localoip.app.core.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


def key_file(store_path: Path) -> Path:
    """The compaction key's file: beside the store, `localoip.db` -> `localoip.key`."""
    return store_path.with_suffix(".key")


class Sealer:
    """Seals summaries into tokens and opens them again, with a key made on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None
        self._lock = threading.Lock()

    def _key(self) -> Fernet:
        from cryptography.fernet import Fernet  # 0.1 s of import: paid at first use

        with self._lock:
            if self._fernet is None:
                self._fernet = Fernet(self._read_or_create())
            return self._fernet

    def _read_or_create(self) -> bytes:
        """The key in the file, or a new one written whole, readable by this user only.

        Written beside and linked into place, so a second server on the same store either
        wins the race or reads the winner's key, never half a file."""
        from cryptography.fernet import Fernet

        if self.path.exists():
            return self.path.read_bytes().strip()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        try:
            os.link(draft, self.path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        return self.path.read_bytes().strip()

    def seal(self, summary: str) -> str:
        return self._key().encrypt(msgspec.json.encode({"summary": summary})).decode()

    def open(self, token: str, param: str) -> str:
        """The summary a token carries; a token this server did not seal is a 400 on `param`."""
        from cryptography.fernet import InvalidToken

        try:
            sealed = self._key().decrypt(token.encode())
            return msgspec.json.decode(sealed, type=_Sealed).summary
        except (InvalidToken, msgspec.DecodeError, UnicodeEncodeError):
            raise InvalidInput(
                "encrypted_content is not a compaction this server made: it was changed, or "
                "comes from another server or key",
                param,
                "invalid_encrypted_content",
            ) from None


class _Sealed(msgspec.Struct):
    summary: str
