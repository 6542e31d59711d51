"""Page sizes for reads that grow with a person's or a shop's history."""

from __future__ import annotations

from aggregates.errors import InvalidInput

# A page holds at most this many entries; 0 asks for that many, so a client that never
# pages still reads histories of up to this size in one call.
MAX_PAGE = 1000


def page_size(asked: int) -> int:
    """0, or more than the most a page holds, gets that most."""
    if asked < 0:
        raise InvalidInput("page_size", "must not be negative")
    return min(asked or MAX_PAGE, MAX_PAGE)
