"""The grading sandbox: a Jupyter kernel that runs a submission inside bubblewrap.

nbgrader starts kernels through a kernel spec. The sandbox runner points it at `dlcourse-sandbox`, whose command is
this file: it runs outside the sandbox, as the instructor, before any student code, and starts the real IPython
kernel inside `bwrap` with

* no network (`--unshare-net`; the kernel talks to nbgrader over IPC sockets in a folder bound into the sandbox);
* its own process namespace (`--unshare-pid`): when the kernel ends, every process the submission started ends too;
* a read-only view of the system and the Python environment, the data the notebooks read, and nothing else: the
  gradebook, the course's other folders, other students' work, the repository and the home folder are not there;
* in place of the reference package, the submission's own (`grader.edition.grading_package`): the course's
  helpers and the student's exported exercises, no reference solution;
* a writable throwaway copy of the notebook's folder, a private /tmp and home, all deleted afterwards;
* an unprivileged user id of its own, no capabilities, and resource limits: address space, processes, CPU seconds,
  file size.

The runner writes the sandbox's settings to a JSON file named by $DLCOURSE_SANDBOX (see `SandboxConfig`).
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

KERNEL_NAME = "dlcourse-sandbox"
CONFIG_VAR = "DLCOURSE_SANDBOX"
HOME = "/home/student"
# Environment variables the kernel keeps; everything else is cleared.
KEPT_ENV = ("LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "DLCOURSE_STATIC_PLOTS",
            "DLCOURSE_CIFAR10", "DLCOURSE_CACHE", "JUPYTER_RUNTIME_DIR")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")


@dataclass
class SandboxConfig:
    "What a sandboxed kernel may see and use."
    scratch: str  # a private folder (root-only) for this grading run's throwaway copies; the runner deletes it
    sockets: str  # the folder of the kernel's IPC sockets (KernelManager.ip points into it); the runner made it
    read_only: list = field(default_factory=list)  # paths bound read-only at the same place
    replaced: list = field(default_factory=list)  # [source, target]: `source` bound read-only in place of `target`
    memory_bytes: int = 8 << 30  # address space of each process
    max_processes: int = 256  # processes and threads of the sandbox's user
    cpu_seconds: int = 900  # CPU time of each process
    file_bytes: int = 1 << 30  # largest file a process may write

    def save(self, path):
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path):
        return cls(**json.loads(Path(path).read_text()))


def bwrap_available() -> str | None:
    "None when bubblewrap starts a sandbox here, else the reason."
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian/Ubuntu: `apt-get install bubblewrap`)"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent",
                            "--dev", "/dev", "--proc", "/proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"bubblewrap cannot start a sandbox here: {probe.stderr.strip()}"
    return None


def write_kernel_spec(folder: Path) -> Path:
    "Write the `dlcourse-sandbox` kernel spec under `folder` (put it on $JUPYTER_PATH); returns the spec's folder."
    spec_dir = Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, str(Path(__file__).resolve()), "{connection_file}"],
            "display_name": "Python 3 (grading sandbox)", "language": "python", "interrupt_mode": "signal"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir


UID_RANGE = range(40000, 60000)


def sandbox_uid() -> int:
    "An unused user id for this kernel alone, so that the process limit counts only its own processes."
    return UID_RANGE.start + os.getpid() % len(UID_RANGE)


def bwrap_command(cfg: SandboxConfig, binds, cwd: str, uid: int, argv):
    """The bwrap command line: the system and the environment read-only, `binds` ((source, target, writable)),
    then `argv` run as `uid` with no capabilities (bwrap mounts as root; setpriv drops to the sandbox's user)."""
    args = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
            "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.exists(d):
            args += ["--ro-bind", d, d]
    python = sorted({sys.prefix, sys.base_prefix})  # the environment, and the Python it was made from
    mounts = [(p, p, False) for p in [*python, *cfg.read_only] if os.path.exists(p)]
    mounts += [(source, target, False) for source, target in cfg.replaced] + list(binds)
    made = set(SYSTEM_DIRS) | {"/", "/tmp", "/proc", "/dev"}
    for source, target, writable in mounts:
        for parent in reversed(Path(target).parents):  # folders above a mount: listable, not the host's modes
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += ["--bind" if writable else "--ro-bind", str(source), str(target)]
        made.add(str(target))
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.update(HOME=HOME, IPYTHONDIR=f"{HOME}/.ipython", PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", MPLCONFIGDIR="/tmp",
               PYTHONDONTWRITEBYTECODE="1")
    for k, v in env.items():
        args += ["--setenv", k, v]
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--bounding-set=-all",
            "--inh-caps=-all", "--"]
    return args + ["--chdir", cwd, *drop, *argv]


def set_limits(cfg: SandboxConfig):
    "Runs in the child before bwrap starts: limits that bwrap and every process of the submission inherit."
    def apply():
        for limit, value in ((resource.RLIMIT_AS, cfg.memory_bytes), (resource.RLIMIT_NPROC, cfg.max_processes),
                             (resource.RLIMIT_CPU, cfg.cpu_seconds), (resource.RLIMIT_FSIZE, cfg.file_bytes),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (value, value))
    return apply


def processes_of(uid: int):
    "Pids of the processes that run as `uid`."
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            pids.append(int(status.parent.name))
    return pids


def watch_parent(on_exit, every=0.5):
    "Call `on_exit` once the process that started this one is gone (nbgrader killed over its time, say)."
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        on_exit()
    threading.Thread(target=watch, daemon=True).start()


def signal_all(uid: int, signum=signal.SIGKILL):
    "Send `signum` to every process of the sandbox's user."
    for pid in processes_of(uid):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def run_kernel(connection_file: str) -> int:
    "Start the IPython kernel for `connection_file` inside the sandbox and wait for it."
    cfg = SandboxConfig.load(os.environ[CONFIG_VAR])
    uid = sandbox_uid()
    cwd = os.getcwd()  # nbgrader starts the kernel in the notebook's folder
    info = json.loads(Path(connection_file).read_text())
    sockets = Path(cfg.sockets)
    if info.get("transport") != "ipc" or Path(info.get("ip", "")).parent != sockets:
        print(f"the grading sandbox has no network: configure KernelManager.transport = 'ipc' and "
              f"KernelManager.ip = '{sockets}/kernel'", file=sys.stderr)
        return 2
    box = Path(tempfile.mkdtemp(prefix="kernel-", dir=cfg.scratch))
    work, home, conn = box / "work", box / "home", box / "connection.json"
    shutil.copytree(cwd, work, symlinks=True)  # a throwaway copy: the submission cannot change its own files
    home.mkdir()
    if os.environ.get("IPYTHONDIR"):  # the grading start-up file; IPython wants its folder writable
        shutil.copytree(os.environ["IPYTHONDIR"], home / ".ipython")
    shutil.copy(connection_file, conn)  # nbgrader's copy is readable by the instructor only
    for path in [box, conn, home, work, *work.rglob("*"), *home.rglob("*")]:
        os.lchown(path, uid, uid)
    os.chown(sockets, uid, uid)  # the kernel creates its IPC sockets there
    binds = [(work, cwd, True), (home, HOME, True), (sockets, sockets, True), (conn, "/connection.json", False)]
    cmd = bwrap_command(cfg, binds, cwd, uid, [sys.executable, "-m", "ipykernel_launcher", "-f", "/connection.json"])
    # its own session: jupyter signals the kernel's process group, and bwrap must not die of an interrupt
    proc = subprocess.Popen(cmd, preexec_fn=set_limits(cfg), start_new_session=True)

    def forward(signum, _frame):
        # an interrupt (a cell over its time) goes to the kernel; termination ends the whole sandbox
        signal_all(uid, signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    watch_parent(lambda: forward(signal.SIGTERM, None))
    try:
        return proc.wait()
    finally:
        signal_all(uid)  # nothing of the submission outlives its kernel
        shutil.rmtree(box, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_kernel(sys.argv[1]))
