"""One build of the Debian package (and its wheelhouse) per test session: it takes a minute or two."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="package", autouse=True)
def no_source_tree_on_the_path() -> Iterator[None]:
    """These tests install the package and run it outside the source tree: a developer's PYTHONPATH
    (a worktree, say) would reach every child and hand them the source tree instead."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONPATH", raising=False)
        yield


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as the tests' own children
    done = subprocess.run([str(BUILD_DEB), "--out", str(out), "--fast"], capture_output=True, text=True,
                          timeout=600, check=False, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.suffix == ".deb"
    return Built(deb, out / "wheelhouse")
