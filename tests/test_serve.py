"""`order-menu serve` with no configuration at all: a newcomer's first command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def test_serve_without_configuration_starts_and_says_where_to_go(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WECHAT_", "DATABASE_", "CATALOG_", "DB_", "COMMUNITY_"))
        and k not in ("HOST", "PORT")
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl+C" in line:
                break
        output = "".join(lines)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/healthz", output)
        assert match, output
        base = f"http://127.0.0.1:{match.group(1)}"
        assert "解东社区" in output  # the demo catalog
        assert "WeChat token (development, generated" in output
        assert f"{base}/services" in output

        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/", timeout=10) as response:
            assert 'href="/services"' in response.read().decode()
        assert (tmp_path / "order-menu.db").exists()  # the embedded default
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
