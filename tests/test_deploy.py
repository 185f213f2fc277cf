"""deploy/: the Kubernetes manifests, checked without a cluster (none runs here).

The Deployment, Service, HorizontalPodAutoscaler and volume claim are validated
against Kubernetes' own schemas (kubernetes-validate, strict: an unknown field
fails); KServe's InferenceService is a custom resource whose schema the
validator does not carry, so its YAML is parsed and the fields that matter are
checked. All of them must agree with each other and with what the project serves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infogan import defaults

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S_VERSION = "1.37.0"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"  # Triton 2.51, the version `make serve` runs


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.parametrize("name", ["model-repository-pvc.yaml", "triton-deployment.yaml", "triton-service.yaml",
                                  "triton-hpa.yaml"])
def test_each_manifest_passes_kubernetes_schemas_strictly(name):
    kubernetes_validate.validate(load(name), K8S_VERSION, strict=True)


def test_the_validator_refuses_a_misspelled_field():
    broken = load("triton-deployment.yaml")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = broken["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_runs_nvidias_triton_on_a_gpu_with_the_repository_read_only_and_health_probes():
    spec = load("triton-deployment.yaml")["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["image"] == TRITON_IMAGE
    assert "--model-repository=/models" in c["args"] and "--model-control-mode=poll" in c["args"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}  # the ports `make serve` listens on
    assert ports == {"http": defaults.HTTP_PORT, "grpc": defaults.GRPC_PORT, "metrics": defaults.METRICS_PORT}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 == c["resources"]["requests"]["nvidia.com/gpu"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/models" and mounts["models"]["readOnly"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    claim = load("model-repository-pvc.yaml")["metadata"]["name"]
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}


def test_the_service_and_the_autoscaler_point_at_the_deployment():
    deployment = load("triton-deployment.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = load("triton-service.yaml")["spec"]
    assert all(labels.get(k) == v for k, v in service["selector"].items())
    container_ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["ports"]} == container_ports
    assert {p["name"]: p["port"] for p in service["ports"]}["grpc"] == defaults.GRPC_PORT  # where the client's --url goes
    hpa = load("triton-hpa.yaml")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]


def test_the_kserve_inference_service_uses_the_triton_runtime_on_the_same_repository():
    isvc = load("kserve-inferenceservice.yaml")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    predictor = isvc["spec"]["predictor"]
    triton = predictor["triton"]
    claim = load("model-repository-pvc.yaml")["metadata"]["name"]
    assert triton["storageUri"] == f"pvc://{claim}/"
    assert triton["runtimeVersion"] == TRITON_IMAGE.rsplit(":", 1)[1]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert 1 <= predictor["minReplicas"] < predictor["maxReplicas"]
