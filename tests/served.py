"""`sandbox serve` as a child process for the tests that need the real server (gunicorn, sockets, workers).

Its output goes to a file, never to an unread pipe: the access log writes a line per request, and a full pipe
would block the workers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

SANDBOX = str(Path(sys.executable).with_name("sandbox"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    base: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve_sandbox(args: list[str], log_dir: Path, env: dict | None = None, executable: str = SANDBOX,
                  cwd: str | None = None):
    """Start `sandbox serve --port <free> *args`; yield a Served once /_sandbox/health answers; stop it after.
    ``env`` replaces the SANDBOX_* variables of this process (none leak in unless given)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")} | (env or {})
    log_path = Path(log_dir) / f"sandbox-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([executable, "serve", "--port", str(port), *args], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=cwd)
    served = Served(f"http://127.0.0.1:{port}", port, proc, log_path)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox serve exited ({proc.returncode}): {served.log()[-3000:]}")
            try:
                if requests.get(served.base + "/_sandbox/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)  # waiting for a child process to bind its port, not for sandbox time
        else:
            raise RuntimeError(f"sandbox serve never answered: {served.log()[-3000:]}")
        yield served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(20)
