"""One build of the Debian package (and its wheelhouse) per test session: it takes a minute or two."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

BUILD_DEB = ROOT / "deploy" / "debian" / "build-deb"


@dataclass(frozen=True)
class Built:
    deb: Path
    wheelhouse: Path


def offline(argv: list[str]) -> list[str]:
    """The command in a network namespace of its own (no network at all) where this machine allows
    it; elsewhere the commands' own --no-index keeps pip off the network."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], check=False,
                                                  capture_output=True).returncode == 0:
        return ["unshare", "-n", *argv]
    return argv


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([str(BUILD_DEB), "--out", str(out), "--fast"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.suffix == ".deb"
    return Built(deb, out / "wheelhouse")
