"""Plumbing shared by the app tests: a served app for real-browser tests and a Chromium page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def require_chromium() -> None:
    """Skip without Debian's chromium, except under CI, where the browser tests must run."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("the browser test must run under CI: install Debian's chromium (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served_app(db: Path, log: Path, timeout_s: float = 90) -> Iterator[str]:
    """``streamlit run app.py`` headless on a free port over database ``db``; yields the base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=dict(os.environ, STUDIO_DB=str(db)), stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if process.poll() is not None:
                    pytest.fail(f"streamlit exited with {process.returncode}: {log.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as answer:
                        if answer.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"streamlit did not answer /_stcore/health within {timeout_s} s: {log.read_text()[-2000:]}"
                    )
                time.sleep(0.5)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chromium_page(width: int = 1440, height: int = 1000):
    """A headless Debian Chromium page (Playwright drives it; no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
