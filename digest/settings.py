"""Deployment settings that are not editorial: secrets from the environment or data dir.

``DIGEST_SECRET_KEY`` (hex or any string of 32+ characters) signs links and Message-IDs.
Without it, a random key is created once in ``<data_dir>/secret.key`` (mode 0600) so the
embedded default works with no setup; every process of a multi-worker deployment must
then share the same key through the environment.

``DIGEST_PREVIOUS_SECRET_KEYS`` (comma-separated) lists keys used before: links signed
with them are still accepted, nothing new is signed with them (key rotation).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from digest.errors import ConfigError

SECRET_ENV = "DIGEST_SECRET_KEY"
PREVIOUS_SECRETS_ENV = "DIGEST_PREVIOUS_SECRET_KEYS"
SECRET_FILE = "secret.key"
MIN_SECRET_LENGTH = 32


class Secret:
    """A value that must never reach a log line, a repr or a traceback: shown as ``***``.

    ``reveal()`` hands the value over at the one point that uses it (signing, AUTH).
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def _checked(value: str, name: str) -> Secret:
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{name} is {len(value)} characters long; use at least "
            f"{MIN_SECRET_LENGTH} (e.g. `python -c 'import secrets; "
            f"print(secrets.token_hex(32))'`)"
        )
    return Secret(value.encode())


def load_previous_secrets(environ: Mapping[str, str]) -> tuple[Secret, ...]:
    """The keys of ``$DIGEST_PREVIOUS_SECRET_KEYS``, newest first as listed; () if unset."""
    values = [value.strip() for value in environ.get(PREVIOUS_SECRETS_ENV, "").split(",")]
    return tuple(
        _checked(value, f"key {number} of ${PREVIOUS_SECRETS_ENV}")
        for number, value in enumerate(values, start=1)
        if value
    )


def load_secret(environ: Mapping[str, str], data_dir: Path) -> Secret:
    """The signing key: from ``$DIGEST_SECRET_KEY``, else from (or created in) the data dir."""
    value = environ.get(SECRET_ENV, "")
    if value:
        return _checked(value, f"${SECRET_ENV}")
    path = data_dir / SECRET_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # O_EXCL: two processes starting at once must not write two different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read or create the signing key {path}: {exc.strerror}; "
            f"make the data dir writable or set ${SECRET_ENV}"
        ) from exc
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the signing key in {path} is too short; delete it to make a new one")
    return Secret(key.encode())
