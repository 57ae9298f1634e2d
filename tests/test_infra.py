"""The deployment files are consistent with the code: entrypoints exist, compose builds reference real files."""

from pathlib import Path

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
