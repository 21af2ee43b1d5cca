"""Shared fixtures: where the repository, the Swift `blindai` binary and the committed attestation vectors are.

The binary is $BLINDAI_BIN, by default .build/debug/blindai at the repository root. Tests that need it fail (they do
not skip) when it is missing: the test command builds it first."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
VECTORS = REPO / "Tests" / "BlindAIAttestationTests" / "Vectors"


def blindai_bin_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BLINDAI_BIN", str(REPO / ".build" / "debug" / "blindai")))


@pytest.fixture(scope="session")
def blindai_bin() -> str:
    p = blindai_bin_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"the Swift blindai binary is missing at {p}: build it (swift build --product blindai) or set BLINDAI_BIN")
    return str(p)


@pytest.fixture(scope="session")
def vectors() -> pathlib.Path:
    assert VECTORS.is_dir(), f"attestation vectors missing at {VECTORS}"
    return VECTORS


@pytest.fixture()
def workdir(tmp_path):
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
