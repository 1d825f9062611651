"""Local servers for the tier-C tests (JupyterLab, Notebook 7, marimo): a free port, and a server
started, waited for and stopped the same way for all of them."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(command: list, *, health_url: str, log_path: pathlib.Path, what: str, timeout: float,
                   env: dict, cwd: pathlib.Path):
    """Starts ``command`` (output to ``log_path``), waits until ``health_url`` answers 200, and stops
    it on exit; fails the test with the log's tail when it exits or does not answer in ``timeout`` s."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{what} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(health_url, timeout=5) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"{what} did not start in {timeout:g} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
