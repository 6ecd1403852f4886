"""The HTML reports in a real headless Chromium (Debian's `chromium` package): they render, the SVG charts are in
the DOM, the console stays silent, and a screenshot is kept as a test artifact.

Skips when Chromium is not installed. Screenshots go to $GPUARB_TEST_ARTIFACTS, else tests/artifacts/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from arbitrage.cli import app

CHROMIUM = os.environ.get("GPUARB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")

NOW = "2026-11-23T12:00:00Z"
SPEC = str(ROOT / "jobspecs" / "llama3-8b-finetune.yaml")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")


def chromium(page: Path, work: Path, *args: str) -> tuple[str, str]:
    """(stdout, stderr) of one headless Chromium run on a local file; its whole process group is ended after."""
    assert CHROMIUM is not None
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "HOME": str(work)})
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers Chromium left behind in the group it leads
        proc.wait()
    assert proc.returncode == 0, err[-2000:]
    return out, err


def console_messages(stderr: str) -> list[str]:
    """Lines where the page wrote to the console or threw (Chromium logs them as CONSOLE / Uncaught)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def artifacts() -> Path:
    folder = Path(os.environ.get("GPUARB_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    runner = CliRunner()
    paths = {"prices": folder / "prices.html", "plan": folder / "plan.html"}
    for args in (("report", "prices", "--now", NOW, "--out", str(paths["prices"])),
                 ("report", "plan", SPEC, "--now", NOW, "--out", str(paths["plan"]))):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
    return paths


@pytest.mark.parametrize("name", ["prices", "plan"])
def test_renders_with_charts_and_a_silent_console(name: str, reports: dict[str, Path], tmp_path: Path) -> None:
    source = reports[name].read_text()
    dom, err = chromium(reports[name], tmp_path, "--dump-dom")
    assert console_messages(err) == []
    figures = source.count('<figure class="chart"')
    assert figures >= 1
    assert dom.count("<svg") == figures  # every chart survived parsing into the rendered DOM
    assert dom.count('class="bar"') == source.count('class="bar"') > 0
    assert "as of" in dom and ("GPU price report" in dom or "Plan report" in dom)


@pytest.mark.parametrize("name", ["prices", "plan"])
def test_screenshot_is_kept_as_an_artifact(name: str, reports: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / f"report-{name}.png"
    chromium(reports[name], tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    width, height, distinct = png_facts(shot)
    assert (width, height) == (1280, 2000)
    assert shot.stat().st_size > 50_000 and distinct > 50  # not a blank page (a blank one is ~12 KB, 2-3 values)
    shutil.copy(shot, artifacts() / shot.name)


def test_console_check_catches_a_page_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); missing();</script></body></html>')
    _, err = chromium(page, tmp_path, "--dump-dom")
    messages = console_messages(err)
    assert any("boom" in m for m in messages) and any("Uncaught ReferenceError" in m for m in messages)
