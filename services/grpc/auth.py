"""Bearer credentials in call metadata."""

from __future__ import annotations

from services.identity.principals import PermissionDenied, Unauthenticated

__all__ = ["PermissionDenied", "Unauthenticated", "bearer", "bearer_token"]


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def bearer_token(metadata: object) -> str:
    """The bearer token of a call's metadata, or "" if it carries none."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return ""
