"""JupyterLab for tests: a server in a folder, on a free port of 127.0.0.1, with a token and Jupyter user folders of its
own (no settings, workspaces, kernels or runtime files of the person running the tests), stopped with its kernels."""
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import free_port


@contextlib.contextmanager
def lab_server(folder: Path, settings: Path, python=sys.executable, env=None, timeout=120):
    """`python -m jupyterlab` serving `folder` (run from there, as a student runs `jupyter lab`), its user settings in
    `settings`; yields (base URL, token)."""
    settings, token, port = Path(settings), secrets.token_hex(16), free_port()
    env = {**(env or os.environ), **{f"JUPYTER_{kind.upper()}_DIR": str(settings / kind)
                                     for kind in ("config", "data", "runtime")}}
    settings.mkdir(parents=True, exist_ok=True)
    log = open(settings / "server.log", "w")
    proc = subprocess.Popen([str(python), "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", f"--IdentityProvider.token={token}"],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while status(f"{url}/api/status", token) != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(settings / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()  # the server shuts its kernels down
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def status(url: str, token: str, method="GET") -> int:
    "The HTTP status of a request to the server (an error status too, not an exception); 0 when nothing answers."
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return res.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def page_config(url: str, token: str) -> dict:
    "The settings JupyterLab's page hands its front end (`jupyter-config-data`): plugins, disabled ones included."
    request = urllib.request.Request(f"{url}/lab", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as res:
        markup = res.read().decode()
    return json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                markup, re.S).group(1))
