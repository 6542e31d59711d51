"""The generated civfed/ package must match what proto/ generates now."""

from __future__ import annotations

from pathlib import Path

from services.protogen import ROOT, generate


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "no contracts found in proto/"
    for path in fresh:
        relative = path.relative_to(tmp_path)
        current = ROOT / relative
        assert current.exists(), f"{relative} is missing: run python -m services.protogen"
        assert current.read_bytes() == path.read_bytes(), (
            f"{relative} is stale: run python -m services.protogen"
        )
