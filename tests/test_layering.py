"""The layering contracts in pyproject.toml hold: import-linter checks them over the real import graph."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ROOT


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout and "5 kept" in result.stdout
