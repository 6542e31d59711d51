"""Generate the civfed.v1 Python stubs from proto/ with grpcio-tools.

Stubs are build output, never committed: `python -m services.protogen` writes
them to the top-level `civfed/` package (the build and dev.py run it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("civfed/v1/*.proto"))


def generate(out_dir: Path = ROOT) -> list[Path]:
    """Compile every contract into `out_dir`; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    files = proto_files()
    if not files:
        return []
    includes = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{includes}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(f.relative_to(PROTO_DIR)) for f in files),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + ", ".join(map(str, files)))
    package = out_dir / "civfed"
    for pkg in (package, package / "v1"):
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from proto/ by services.protogen; do not edit."""\n')
    return sorted(package.rglob("*.py*"))


if __name__ == "__main__":
    written = generate()
    print(f"generated {len(written)} files from {len(proto_files())} contracts", file=sys.stderr)
