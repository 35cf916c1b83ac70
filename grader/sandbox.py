"""The grading sandbox: the kernels of a grading process run inside one bubblewrap sandbox, each forked fresh.

A grading process (a runner, grader/runner.py) starts one sandbox, a `KernelServer`, for all the notebooks it grades.
Inside it, `serve` imports the heavy libraries once (`PRELOAD`: torch, IPython, ...; never a line of a submission)
and then forks a fresh IPython kernel for each notebook, so that no notebook pays for `import torch`. nbgrader
starts kernels through a kernel spec, `dlcourse-sandbox`, whose command is this file (`launch`): it runs outside the
sandbox, as the instructor, gives the kernel a throwaway copy of the notebook's folder and a home of its own, asks
the server for a kernel, relays interrupts, and ends when the kernel does.

The sandbox has

* no network (`--unshare-net`; kernels talk to nbgrader over IPC sockets in a folder bound into the sandbox);
* its own process namespace, whose PID 1 is the server;
* a read-only view of the system and the Python environment, the data the notebooks read (CIFAR-10 also where
  torchvision looks for it, `SandboxConfig.home_links`), and nothing else: the gradebook, the course's other folders,
  other students' work, the repository and the home folder are not there;
* in place of the reference package, the submission's own (`grader.edition.grading_package`): the course's helpers
  and the student's exported exercises, no reference solution; the runner refills it for each submission;
* an unprivileged user id of its own, no capabilities, and limits on each kernel: address space, processes, CPU
  seconds, file size.

What keeps one notebook from reaching the grade of the next (which may be another student's):

* each kernel is forked from the server, which has run no submission code: a fresh interpreter, with the
  start-up files run anew, the folder a fresh copy, the home its own;
* before each kernel, every process that earlier kernels left is killed, and the server empties /tmp and /dev/shm;
* the server is the namespace's PID 1, which its namespace's processes cannot kill, and it is not dumpable, so that
  they cannot trace it or write its memory either.

`KernelServer` writes the sandbox's settings to a JSON file named by $DLCOURSE_SANDBOX (`SandboxConfig`), which
`launch` reads.
"""
import ctypes
import glob
import importlib
import json
import os
import resource
import selectors
import shutil
import signal
import socket
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
SERVER_FILE = "/opt/dlcourse-grading/sandbox.py"  # this file, as the sandbox sees it
# Imported by the server before it forks kernels: third-party libraries from the read-only environment only.
PRELOAD = ("numpy", "torch", "torchvision", "matplotlib.pyplot", "sklearn.metrics", "tqdm", "IPython",
           "ipykernel.kernelapp")
# Environment variables the sandbox keeps; everything else is cleared.
KEPT_ENV = ("LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "DLCOURSE_STATIC_PLOTS",
            "DLCOURSE_CIFAR10", "DLCOURSE_CACHE")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc")
EMPTIED = ("/tmp", "/dev/shm")  # emptied before each kernel
UID_RANGE = range(40000, 60000)


@dataclass
class SandboxConfig:
    "What the sandboxed kernels may see and use."
    run: str  # a root-owned folder bound read-write at the same place: each kernel's folder, the IPC socket folders
    control: str  # the server's Unix socket (outside the sandbox)
    ipython: str  # the grading IPython directory (start-up files), copied into each kernel's home
    uid: int  # the sandbox's user
    read_only: list = field(default_factory=list)  # paths bound read-only at the same place
    replaced: list = field(default_factory=list)  # [source, target]: `source` bound read-only in place of `target`
    home_links: dict = field(default_factory=dict)  # {path in each kernel's home: the path in the sandbox it links to}
    memory_bytes: int = 8 << 30  # address space of each process
    max_processes: int = 256  # processes and threads of the sandbox's user
    cpu_seconds: int = 900  # CPU time of each process
    file_bytes: int = 1 << 30  # largest file a process may write
    server_pid: int = 0  # the server's process id outside the sandbox

    def save(self, path):
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path):
        return cls(**json.loads(Path(path).read_text()))

    def limits(self):
        return {resource.RLIMIT_AS: self.memory_bytes, resource.RLIMIT_NPROC: self.max_processes,
                resource.RLIMIT_CPU: self.cpu_seconds, resource.RLIMIT_FSIZE: self.file_bytes,
                resource.RLIMIT_CORE: 0}


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


def sandbox_uid() -> int:
    "An unused user id for this grading process's sandbox, so that the process limit counts only its own processes."
    return UID_RANGE.start + os.getpid() % len(UID_RANGE)


def bwrap_command(cfg: SandboxConfig, binds, env: dict, argv):
    """The bwrap command line: the system and the environment read-only, `binds` ((source, target, writable)),
    then `argv` run as the sandbox's user, PID 1 of its namespace, with no capabilities (bwrap mounts as root;
    setpriv drops to the sandbox's user)."""
    args = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--as-pid-1", "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
            "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for device in sorted(glob.glob("/dev/nvidia*")):  # a GPU runner's devices (untested here: no GPU)
        args += ["--dev-bind", device, device]
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
    env = {k: env[k] for k in KEPT_ENV if k in env}
    env.update(HOME=HOME, PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", MPLCONFIGDIR="/tmp",
               XDG_CACHE_HOME="/tmp",
               MPLBACKEND="module://matplotlib_inline.backend_inline", PYTHONDONTWRITEBYTECODE="1")
    for k, v in env.items():
        args += ["--setenv", k, v]
    drop = ["setpriv", f"--reuid={cfg.uid}", f"--regid={cfg.uid}", "--clear-groups", "--bounding-set=-all",
            "--inh-caps=-all", "--"]
    return args + ["--chdir", "/", *drop, *argv]


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


def namespace_pid(pid: int) -> int | None:
    "The process id that `pid` has in its own (innermost) process namespace."
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("NSpid:")), "")
    return int(line.split()[-1]) if line.split()[1:] else None


def kill_all(uid: int, spare=(), rounds=100):
    "Kill every process of `uid` but `spare`, again while new ones appear (a fork bomb)."
    for _ in range(rounds):
        pids = [p for p in processes_of(uid) if p not in spare]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def watch_parent(on_exit, every=0.5):
    "Call `on_exit` once the process that started this one is gone (nbgrader killed over its time, say)."
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        on_exit()
    threading.Thread(target=watch, daemon=True).start()


class KernelServer:
    "The sandbox of a grading process, outside: starts the server inside bwrap, and ends it with all it started."

    def __init__(self, cfg: SandboxConfig, env: dict, timeout=120):
        self.cfg = cfg
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        Path(cfg.control).unlink(missing_ok=True)
        listener.bind(cfg.control)
        listener.listen(16)
        binds = [(cfg.run, cfg.run, True), (__file__, SERVER_FILE, False)]
        limits = json.dumps({int(k): v for k, v in cfg.limits().items()})
        cmd = bwrap_command(cfg, binds, env, [sys.executable, SERVER_FILE, "--serve", str(listener.fileno()), limits])
        self.proc = subprocess.Popen(cmd, pass_fds=[listener.fileno()], stdout=subprocess.PIPE,
                                     start_new_session=True)
        listener.close()
        ready = selectors.DefaultSelector()
        ready.register(self.proc.stdout, selectors.EVENT_READ)
        line = self.proc.stdout.readline() if ready.select(timeout) else b""
        pids = [p for p in processes_of(cfg.uid) if namespace_pid(p) == 1]
        if line.strip() != b"ready" or len(pids) != 1:
            self.close()
            raise RuntimeError(f"the grading sandbox did not start (exit code {self.proc.returncode})")
        cfg.server_pid = pids[0]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self):
        "End the sandbox: the server, and with it every process of its namespace."
        if self.cfg.server_pid:
            try:
                os.kill(self.cfg.server_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:  # bwrap reaps the server, whose end took every process of its namespace with it
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        kill_all(self.cfg.uid)
        Path(self.cfg.control).unlink(missing_ok=True)


# --- inside the sandbox ---

def empty(folder: str):
    "Remove what `folder` holds, but for the folders the sandbox binds there (and those above them)."
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4].encode().decode("unicode_escape") for line in f]
    inside = [m for m in mounts if m.startswith(folder.rstrip("/") + "/")]
    for entry in os.scandir(folder) if os.path.isdir(folder) else ():
        if any(m == entry.path or m.startswith(entry.path + "/") for m in inside):
            continue  # root's, and not writable by the sandbox's user
        try:
            shutil.rmtree(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry.path)
        except OSError:
            pass


def serve(listen_fd: int, limits: dict):
    """The server, PID 1 of the sandbox: preload, then fork a kernel for each request on `listen_fd`.

    A request is one JSON line `{"connection_file", "cwd", "home"}`; later lines `interrupt` interrupt the kernel.
    The answer is one JSON line `{"exit": code}` once the kernel has ended. A client that goes away ends its kernel."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # a library the environment lacks: its notebooks import it themselves
            pass
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: not traceable by the sandbox's user
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # PID 1 gets only the signals it handles
    listener = socket.socket(fileno=listen_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    clients = {}  # connection: [pending bytes, its kernel's pid (None: not asked yet, 0: ended)]
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                clients[conn] = [b"", None]
                sel.register(conn, selectors.EVENT_READ)
            elif key.fileobj == wake_r:
                os.read(wake_r, 4096)
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                pending, pid = clients[conn]
                if not data:  # the client is gone: so is its kernel
                    if pid:
                        kill_group(pid)
                    sel.unregister(conn)
                    conn.close()
                    del clients[conn]
                    continue
                *lines, clients[conn][0] = (pending + data).split(b"\n")
                for line in lines:
                    if pid is None:
                        try:
                            request = json.loads(line)
                        except ValueError:
                            continue
                        pid = clients[conn][1] = fork_kernel(request, limits,
                                                             [listener, wake_r, wake_w, sel, *clients])
                    elif line == b"interrupt" and pid:
                        try:
                            os.kill(pid, signal.SIGINT)
                        except ProcessLookupError:
                            pass
        while True:  # PID 1 reaps every orphan; a kernel's end is its client's answer
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = next((c for c, (_, kernel) in clients.items() if kernel == pid), None)
            if conn is not None:
                clients[conn][1] = 0
                try:
                    conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                except OSError:
                    pass
                kill_group(pid)


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def fork_kernel(request: dict, limits: dict, inherited) -> int:
    "Fork a fresh IPython kernel for `request`; returns its pid."
    for folder in EMPTIED:
        empty(folder)
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for obj in inherited:
            os.close(obj) if isinstance(obj, int) else obj.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        for limit, value in limits.items():
            resource.setrlimit(int(limit), (value, value))
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.chdir(request["cwd"])
        os.environ.update(HOME=request["home"], IPYTHONDIR=f"{request['home']}/.ipython")
        sys.path[0] = request["cwd"]
        import random
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
        from ipykernel.kernelapp import launch_new_instance
        launch_new_instance()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        os._exit(code)


# --- outside: the kernel spec's command ---

def launch(connection_file: str) -> int:
    "Ask the sandbox's server for a kernel for `connection_file`, on a fresh copy of this folder, and wait for it."
    cfg = SandboxConfig.load(os.environ[CONFIG_VAR])
    cwd = os.getcwd()  # nbgrader starts the kernel in the notebook's folder
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc" or Path(cfg.run) not in Path(info.get("ip", "/")).parents:
        print(f"the grading sandbox has no network: configure KernelManager.transport = 'ipc' and "
              f"KernelManager.ip inside {cfg.run}", file=sys.stderr)
        return 2
    kill_all(cfg.uid, spare={cfg.server_pid})  # whatever earlier kernels left behind
    box = Path(tempfile.mkdtemp(prefix="kernel-", dir=cfg.run))
    work, home, conn = box / "work", box / "home", box / "connection.json"
    shutil.copytree(cwd, work, symlinks=True)  # a throwaway copy: the submission cannot change its own files
    shutil.copytree(cfg.ipython, home / ".ipython")  # the grading start-up files
    for name, target in cfg.home_links.items():  # e.g. read-only data where libraries look for it
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).symlink_to(target)
    shutil.copy(connection_file, conn)  # nbgrader's copy is readable by the instructor only
    for path in [box, conn, home, work, *work.rglob("*"), *home.rglob("*")]:
        os.lchown(path, cfg.uid, cfg.uid)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def forward(signum, _frame):
        if signum == signal.SIGINT:  # a cell over its time: interrupt the kernel
            server.sendall(b"interrupt\n")
        else:  # the end: closing the connection ends the kernel
            raise SystemExit(1)
    try:
        server.connect(cfg.control)
        server.sendall(json.dumps({"connection_file": str(conn), "cwd": str(work), "home": str(home)}).encode()
                       + b"\n")
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        watch_parent(lambda: os.kill(os.getpid(), signal.SIGTERM))
        answer = b""
        while not answer.endswith(b"\n"):
            data = server.recv(4096)
            if not data:
                return 1
            answer += data
        return int(json.loads(answer).get("exit", 1))
    except (OSError, ValueError) as e:
        print(f"the grading sandbox's kernel server did not answer: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.close()
        kill_all(cfg.uid, spare={cfg.server_pid})  # nothing of the kernel outlives it
        shutil.rmtree(box, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        sys.exit(serve(int(sys.argv[2]), json.loads(sys.argv[3])))
    sys.exit(launch(sys.argv[1]))
