"""Every Kubernetes manifest, rendered by kustomize, is valid against its schema.

Rendering: `kustomize build`, or `kubectl kustomize` (kustomize built into kubectl);
with neither installed the test fails and says so. Validation: kubernetes-validate
(PyPI, maintained; it bundles the Kubernetes JSON schemas) in strict mode for every
built-in kind, and jsonschema against the operators' own CRD schemas for
RabbitmqCluster (rabbitmq/cluster-operator) and Cluster/ScheduledBackup
(cloudnative-pg), vendored in tests/deploy/schemas/ with their source commit.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KUBERNETES_VERSION = "1.32"
TARGETS = ("base", "overlays/dev", "overlays/production")
SERVICES = ("identity", "accounts", "billing", "payments", "notifications", "gateway")
CRD_SCHEMAS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmqcluster-rabbitmq.com-v1beta1.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "cluster-postgresql.cnpg.io-v1.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "scheduledbackup-postgresql.cnpg.io-v1.json",
}


def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail(
        "neither kustomize nor kubectl is installed: one of them renders deploy/k8s "
        "(Debian/Ubuntu: the kubectl package of the Kubernetes apt repository).",
        pytrace=False,
    )


@functools.cache
def render(target: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*kustomize_command(), str(K8S / target)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize failed for {target}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def strict(schema: Any) -> Any:
    """Reject unknown fields, as the API server does, except where the CRD allows them."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    schema = {k: v for k, v in schema.items() if k not in ("$comment", "x-muniportal-source")}
    # The API server fills in metadata; the CRD schema leaves it open.
    schema = strict(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def validate(doc: dict[str, Any]) -> list[str]:
    """Schema errors of one manifest (empty when valid)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(*key).iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except SchemaNotFoundError as exc:
        return [exc.message]
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def named(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_manifest_is_valid_against_its_schema(target):
    docs = render(target)
    assert docs, f"{target} rendered nothing"
    errors = {
        f"{d['kind']}/{d['metadata']['name']}": problems for d in docs if (problems := validate(d))
    }
    assert not errors, json.dumps(errors, indent=1)


def test_the_validator_rejects_what_the_api_server_would():
    deployment = copy.deepcopy(named(render("base"), "Deployment")["billing"])
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    errors = validate(deployment)
    assert errors
    cluster = copy.deepcopy(named(render("base"), "RabbitmqCluster")["muniportal-rabbitmq"])
    cluster["spec"]["replicaCount"] = 3
    assert any("replicaCount" in e for e in validate(cluster))
    db = copy.deepcopy(named(render("base"), "Cluster")["muniportal-db"])
    db["spec"]["instances"] = "three"
    assert validate(db)


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_has_probes_resources_a_budget_and_an_autoscaler(target):
    docs = render(target)
    deployments = named(docs, "Deployment")
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    scalers = {
        d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"
    }
    for name in SERVICES:
        containers = deployments[name]["spec"]["template"]["spec"]["containers"]
        container = next(c for c in containers if c["name"] == name)
        assert container["args"] == ["service", name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert container["resources"]["requests"]["cpu"], name
        assert container["resources"]["limits"]["memory"], name
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        # Stateless: their state is in PostgreSQL, their singleton jobs under leases.
        assert name in scalers, f"{name} has no HorizontalPodAutoscaler"
    for name in deployments:
        assert name in budgets, f"{name} has no PodDisruptionBudget"


@pytest.mark.parametrize("target", ("base", "overlays/production"))
def test_rabbitmq_has_three_nodes_for_quorum_queues_and_postgres_three_instances(target):
    docs = render(target)
    rabbit = named(docs, "RabbitmqCluster")["muniportal-rabbitmq"]
    assert rabbit["spec"]["replicas"] == 3
    config = named(docs, "ConfigMap")["muniportal-config"]["data"]
    assert config["QUEUE_TYPE"] == "quorum"
    assert int(config["DELIVERY_LIMIT"]) > 0
    assert named(docs, "Cluster")["muniportal-db"]["spec"]["instances"] == 3


def test_production_backs_up_the_database_and_runs_in_production_mode():
    docs = render("overlays/production")
    assert named(docs, "Cluster")["muniportal-db"]["spec"]["backup"]["barmanObjectStore"]
    assert named(docs, "ScheduledBackup")["muniportal-db-nightly"]["spec"]["cluster"] == {
        "name": "muniportal-db"
    }
    assert named(docs, "ConfigMap")["muniportal-config"]["data"]["ENV"] == "production"
    assert "processor-sandbox" not in named(docs, "Deployment")


@pytest.mark.parametrize("target", TARGETS)
def test_secrets_are_referenced_never_committed(target):
    docs = render(target)
    assert not [d for d in docs if d["kind"] == "Secret"]
    text = yaml.safe_dump_all(docs)
    for marker in ("password:", "api-key:", "BEGIN PRIVATE KEY"):
        assert marker not in text.replace("key: password", "").replace("key: api-key", ""), marker
    env = [
        e
        for d in named(docs, "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    ]
    for item in env:
        if item["name"] in (
            "PROCESSOR_API_KEY",
            "PROCESSOR_WEBHOOK_SECRETS",
            "SMTP_PASSWORD",
            "RABBITMQ_PASSWORD",
            "DATABASE_URL",
            "MAIL_SPOOL_KEY",
        ):
            assert "secretKeyRef" in item["valueFrom"], item
