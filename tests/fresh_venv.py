"""Fresh virtual environments for installing what we ship (the wheel, the student edition) as a user would.

Installing PyTorch (a few GB) into every new environment would take minutes, so a fresh environment sees this
environment's third-party packages through one `.pth` line that names a folder of links to them. The links leave out
dlcourse (its editable install and its metadata) and anything named like the student package, so neither can be
imported or counts as installed until the test installs it; `FreshVenv` checks that before it is used. A `.pth`
line only adds its folder to `sys.path` (the `.pth` files inside are not run), so the editable install's finder
stays out too. pip runs offline (`--no-index`): a dependency the environment does not already have fails the
install instead of being downloaded.
"""
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

class FreshVenv:
    def __init__(self, path: Path, hidden=("dlcourse", "hw2")):
        "A new venv in `path` that sees this environment's packages except those named `hidden` (by prefix)."
        self.path = Path(path)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.path)], check=True)
        self.python = self.path / "bin" / "python"
        site = Path(self.run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
        deps = self.path / "third-party"
        deps.mkdir()
        for lib in sorted({Path(sysconfig.get_path("purelib")), Path(sysconfig.get_path("platlib"))}):
            for entry in lib.iterdir():
                if not entry.name.lower().startswith((*hidden, "__editable__")) and entry.suffix != ".pth" \
                        and entry.name != "__pycache__" and not (deps / entry.name).exists():
                    (deps / entry.name).symlink_to(entry)
        (site / "third-party.pth").write_text(f"{deps}\n")
        for name in hidden:
            assert self.run("-c", f"import {name}", check=False).returncode != 0, f"{name} is importable in {self.path}"

    def env(self, **extra):
        "The environment for commands run in the venv: its bin first, no repository on PYTHONPATH."
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DLCOURSE_CIFAR10")}
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        return {**env, **extra}

    def run(self, *args, cwd=None, check=True, timeout=600, env=None):
        "`python *args` in the venv; the completed process (stdout and stderr as text)."
        res = subprocess.run([str(self.python), *args], cwd=cwd or self.path, capture_output=True, text=True,
                             timeout=timeout, env=env or self.env())
        if check and res.returncode != 0:
            raise AssertionError(f"`python {' '.join(map(str, args))}` failed ({res.returncode}):\n"
                                 f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
        return res

    def pip_install(self, *args):
        "pip install into the venv, offline, with the build backend the environment has."
        return subprocess.run([sys.executable, "-m", "pip", "--python", str(self.python), "install", "--no-index",
                               "--no-build-isolation", "--disable-pip-version-check", "--quiet", *map(str, args)],
                              capture_output=True, text=True, check=True, cwd=self.path, env=self.env())

    def add_script(self, name):
        "A console script of this environment (e.g. nbdev-export) in the venv's bin, running the venv's python."
        body = Path(sys.executable).with_name(name).read_text().split("\n", 1)[1]
        script = self.path / "bin" / name
        script.write_text(f"#!{self.python}\n{body}")
        script.chmod(0o755)
        return script

    def add_data_files(self, *dists):
        """What pip's wheels of these distributions put into an environment outside site-packages (`etc/jupyter`,
        `share/jupyter`: Jupyter's extensions and the settings that enable them), linked into the venv."""
        prefix = Path(sys.prefix).resolve()
        for dist in dists:
            for file in importlib.metadata.files(dist):
                path = Path(file.locate()).resolve()
                if path.is_relative_to(prefix / "etc") or path.is_relative_to(prefix / "share"):
                    link = self.path / path.relative_to(prefix)
                    link.parent.mkdir(parents=True, exist_ok=True)
                    if not link.exists():
                        link.symlink_to(path)

    def command(self, name, *args, cwd, check=True, timeout=600):
        res = subprocess.run([str(self.path / "bin" / name), *map(str, args)], cwd=cwd, capture_output=True,
                             text=True, timeout=timeout, env=self.env())
        if check and res.returncode != 0:
            raise AssertionError(f"`{name}` failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
        return res

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)
