"""The deployment files are consistent with the code (entrypoints exist, compose builds reference real files) and
safe by default (secrets from the environment, loopback-only ports, non-root containers)."""

import re
from pathlib import Path

import pytest
import yaml

from darkembed.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_prefect_yaml_entrypoints_and_pools():
    doc = yaml.safe_load((ROOT / "infra/prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in doc["deployments"]}
    assert pools == {"cpu", "gpu"}
    for d in doc["deployments"]:
        path, func = d["entrypoint"].split(":")
        src = (ROOT / path).read_text()
        assert f"def {func}(" in src, d["entrypoint"]
    nightly = next(d for d in doc["deployments"] if d["name"] == "nightly")
    assert nightly["schedules"][0]["timezone"] == "UTC"
    gpu = [d["name"] for d in doc["deployments"] if d["work_pool"]["name"] == "gpu"]
    assert gpu == ["embed-gpu"]


def test_compose_builds_and_mounts_exist():
    doc = yaml.safe_load((ROOT / "infra/compose.yaml").read_text())
    services = doc["services"]
    assert {"postgres", "prefect-server", "mlflow", "worker-cpu", "worker-gpu"} <= set(services)
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            assert (ROOT / "infra" / build["context"] / build["dockerfile"]).is_file(), name
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_stack_overlay_is_a_valid_config():
    cfg = load_config(ROOT / "infra/stack.yaml")
    assert cfg.orchestration.embed_deployment == "embed/embed-gpu"


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` substitution (enough for these files)."""
    import re

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", sub, text.replace("$$", "\0")).replace("\0", "$")


SECRETS = {"POSTGRES_PASSWORD": "s1", "PREFECT_DB_PASSWORD": "s2", "MLFLOW_DB_PASSWORD": "s3"}


def test_compose_refuses_to_start_without_each_secret_and_holds_no_password():
    text = (ROOT / "infra/compose.yaml").read_text()
    yaml.safe_load(_interpolate(text, SECRETS))
    for name in SECRETS:
        with pytest.raises(KeyError, match=name):
            _interpolate(text, {k: v for k, v in SECRETS.items() if k != name})
    init = (ROOT / "infra/postgres-init.sh").read_text()
    for t in (text, init):
        assert not re.search(r"(?i)password\s*'[^:]", t)  # no literal password in SQL
        assert not re.search(r"://\w+:(?!\$\{)[^@\s]+@", t)  # no user:password@ in a URL but from a variable
        assert "postgres:postgres" not in t and not re.search(r"PASSWORD:-", t)  # no default password
    assert "$PREFECT_DB_PASSWORD" in init and "$MLFLOW_DB_PASSWORD" in init


def test_compose_publishes_the_uis_on_loopback_only_by_default():
    doc = yaml.safe_load(_interpolate((ROOT / "infra/compose.yaml").read_text(), SECRETS))
    published = {name: svc["ports"] for name, svc in doc["services"].items() if svc.get("ports")}
    assert set(published) == {"prefect-server", "mlflow"}
    for ports in published.values():
        assert all(str(p).startswith("127.0.0.1:") for p in ports), ports
    everywhere = yaml.safe_load(
        _interpolate((ROOT / "infra/compose.yaml").read_text(), {**SECRETS, "STACK_BIND": "0.0.0.0"})
    )
    assert everywhere["services"]["mlflow"]["ports"] == ["0.0.0.0:5000:5000"]


def test_every_container_runs_as_a_non_root_user():
    doc = yaml.safe_load(_interpolate((ROOT / "infra/compose.yaml").read_text(), SECRETS))
    for name, svc in doc["services"].items():
        user = str(svc.get("user", "root")).split(":")[0]
        assert user not in ("root", "0", ""), name
    for dockerfile in ("infra/worker.Dockerfile", "infra/mlflow.Dockerfile"):
        users = re.findall(r"^USER\s+(\S+)", (ROOT / dockerfile).read_text(), re.MULTILINE)
        assert users and users[-1] not in ("root", "0"), dockerfile
