"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with the server's key.

The key comes from ``LOOPWRIGHT_SECRET_KEY`` (a Fernet key, e.g. from
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``),
else from ``<home>/secret.key``, created on first use readable by its owner only (0600). Every
server process that shares a database must share the key: set the variable for several hosts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["KEY_ENV", "Cipher", "mask"]

KEY_ENV = "LOOPWRIGHT_SECRET_KEY"
KEY_FILE = "secret.key"


def mask(value: str) -> str:
    """The only form of a secret ever shown: its last four characters when it is long enough
    that they give nothing away (20+), else asterisks."""
    return f"****{value[-4:]}" if len(value) >= 20 else "****"


class Cipher:
    """Encrypts and decrypts secrets with the key of ``home`` (see the module)."""

    def __init__(self, home: Path) -> None:
        self._home = home
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is not None:
            return self._fernet
        try:
            from cryptography.fernet import Fernet
        except ImportError:  # pragma: no cover - the llm extra installs it
            raise ConfigError(
                "gateway secrets need the cryptography package: pip install 'loopwright[llm]'"
            ) from None
        text = os.environ.get(KEY_ENV, "").strip()
        if text:
            try:
                self._fernet = Fernet(text.encode())
            except ValueError:
                raise ConfigError(
                    f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes); make one "
                    'with python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"'
                ) from None
            return self._fernet
        self._fernet = Fernet(self._file_key(Fernet.generate_key))
        return self._fernet

    def _file_key(self, generate: object) -> bytes:
        path = self._home / KEY_FILE
        self._home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                raise ConfigError(
                    f"{path} is readable by others; run `chmod 600 {path}` (it encrypts the "
                    "gateway's secrets)"
                ) from None
            return path.read_bytes().strip()
        key: bytes = generate()  # type: ignore[operator]
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return key

    def encrypt(self, value: str) -> str:
        return self._key().encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, name: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._key().decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise InvalidInput(
                f"secret {name!r} does not decrypt with this server's key ({KEY_ENV} or "
                f"<home>/{KEY_FILE}); set the key it was stored with, or set the secret again"
            ) from None
