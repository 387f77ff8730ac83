"""The production layout in docker-compose.yml and the README's commands."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services():
    services = _compose()["services"]
    assert {"web", "worker", "gpu-worker", "beat", "postgres", "redis"} <= set(services)
    gpu = services["gpu-worker"]["command"]
    assert gpu[gpu.index("-Q") + 1] == "gpu"
    assert gpu[gpu.index("--concurrency") + 1] == "1"
    default = services["worker"]["command"]
    assert default[default.index("-Q") + 1] == "default"
    assert "beat" in services["beat"]["command"]
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_compose_config_validates(tmp_path):
    """`docker compose config` (or Debian's docker-compose) accepts the file; CI installs it."""
    binary = shutil.which("docker-compose")
    if binary is None:
        assert not os.environ.get("CI"), "CI must install docker-compose (see .ci/run)"
        return  # structural checks above still ran; nothing to execute here
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [binary, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    setup = readme.index("python3 dev.py up")
    assert setup < readme.index("python3 dev.py test")
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()


def test_openapi_schema_validates_without_warnings(tmp_path):
    """The served schema (`/api/schema/`) is valid OpenAPI with no drf-spectacular warnings."""
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    assert "/api/labeling/claim/" in schema["paths"]
    assert "/api/rounds/" in schema["paths"]


# ---------------------------------------------------------------- locks, image, compose health


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[name.split("[")[0].strip().lower().replace("_", "-")] = version.strip()
    return pins


def _locked(path: Path) -> dict[str, str]:
    """name -> version for every entry of a uv/pip-compile lock, asserting each has a hash."""
    entries, current = {}, None
    for line in path.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            current = name.lower().replace("_", "-")
            entries[current] = version
        elif current and line.strip().startswith("--hash=sha256:"):
            entries[current] = (
                entries[current] + "#hashed" if "#" not in entries[current] else entries[current]
            )
    unhashed = [name for name, version in entries.items() if not version.endswith("#hashed")]
    assert not unhashed, f"{path.name}: entries without a hash: {unhashed}"
    return {name: version.removesuffix("#hashed") for name, version in entries.items()}


def test_locks_hold_every_pin_of_pyproject_with_hashes():
    """A dependency added to pyproject.toml without `python3 dev.py lock` fails here."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _pins(project["dependencies"])
    dev = _pins(project["optional-dependencies"]["dev"])
    runtime_lock = _locked(ROOT / "requirements.lock")
    dev_lock = _locked(ROOT / "requirements-dev.lock")
    for pins, lock, name in (
        (runtime, runtime_lock, "requirements.lock"),
        ({**runtime, **dev}, dev_lock, "requirements-dev.lock"),
    ):
        for package, version in pins.items():
            assert package in lock, f"{package} is pinned in pyproject.toml but not in {name}"
            assert lock[package].split("+")[0] == version, (package, lock[package], version)
    # The dev machine gets the CPU build of torch, the image PyPI's (CUDA) build.
    assert dev_lock["torch"].endswith("+cpu")
    assert "+" not in runtime_lock["torch"]


def test_setup_can_drop_torch_from_the_lock_when_cpu_wheels_are_out_of_reach():
    sys.path.insert(0, str(ROOT))
    import dev

    lock = (ROOT / "requirements-dev.lock").read_text()
    without = dev.drop_locked_package(lock, "torch")
    assert "torch==" not in without
    assert set(_pins_of(lock)) - set(_pins_of(without)) == {"torch"}
    assert dev.locked_version(lock, "torch").endswith("+cpu")


def _pins_of(lock: str) -> list[str]:
    return [line.split("==")[0] for line in lock.splitlines() if line and line[0].isalpha()]


def test_image_installs_locked_dependencies_before_the_source_and_runs_as_a_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = dockerfile.index("--require-hashes -r /tmp/requirements.lock")
    assert install < dockerfile.index("COPY . .")
    final_stage = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert "\nUSER stepwise" in final_stage
    assert "\nHEALTHCHECK " in final_stage
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "frontend/node_modules"} <= set(ignored)


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy():
    services = _compose()["services"]
    for name in ("web", "worker", "gpu-worker", "postgres", "redis"):
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
    for name in ("web", "worker", "gpu-worker", "beat", "postgres", "redis"):
        assert services[name].get("restart", _compose_app_default()) == "unless-stopped", name


def _compose_app_default() -> str:
    return _compose()["x-app"]["restart"]
