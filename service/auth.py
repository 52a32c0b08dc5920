"""API keys with roles. Keys are kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

ROLES = ("checkout", "merchandiser", "admin")  # each role may do everything the ones before it may
MIN_KEY_LENGTH = 16


class KeyFileError(ValueError):
    pass


@dataclass(frozen=True)
class ApiKey:
    role: str
    digest: bytes


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_key_file(text: str, source: str = "api keys file") -> list[ApiKey]:
    """Lines ``role key``; blank lines and ``#`` comments ignored. Errors never quote a key."""
    keys = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise KeyFileError(f"{source} line {number}: expected 'role key', got {len(parts)} fields")
        role, key = parts
        if role not in ROLES:
            raise KeyFileError(f"{source} line {number}: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if len(key) < MIN_KEY_LENGTH:
            raise KeyFileError(
                f"{source} line {number}: key is {len(key)} characters; at least {MIN_KEY_LENGTH} required"
            )
        keys.append(ApiKey(role, _digest(key)))
    return keys


def load_key_file(path: Path) -> list[ApiKey]:
    return parse_key_file(Path(path).read_text(), source=str(path))


class KeyRing:
    def __init__(self, keys: list[ApiKey]):
        self._keys = list(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def role_of(self, presented: str | None) -> str | None:
        """The role of a presented key, or None. Every stored digest is compared, always."""
        if not presented:
            return None
        digest = _digest(presented)
        found = None
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key.role
        return found


def allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LoopbackOnly:
    """ASGI guard for a keyless app: requests that arrive on a non-loopback local address get 403.

    The app factory cannot see the address uvicorn binds (``uvicorn --factory --host 0.0.0.0``), but
    every connection carries its local address (``scope["server"]``). Values that are not IP
    addresses (a test client's ``testserver``, a Unix socket) are let through.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] == "http" else None
        host = server[0] if server else None
        if host is not None and _is_ip(host) and not is_loopback(host):
            from service.errors import error_response

            message = (
                "this server has no API keys, so it answers only on loopback addresses; "
                "start it with --api-keys FILE, or --insecure to run an open server"
            )
            return await error_response(403, "open_server_refused", message)(scope, receive, send)
        return await self.app(scope, receive, send)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def check_bind_policy(host: str, keys_enabled: bool, insecure: bool) -> None:
    """Refuse to serve an open (keyless) API on a non-loopback address unless told to."""
    if not keys_enabled and not is_loopback(host) and not insecure:
        raise SystemExit(
            f"refusing to bind {host!r} with no API keys: give --api-keys FILE (lines 'role key'), "
            "bind 127.0.0.1, or pass --insecure to run an open server on the network"
        )
