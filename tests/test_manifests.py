"""The deployment files are valid and agree with the service's settings.

Offline, against schemas that ship in PyPI packages: the Kubernetes
manifests (deploy/k8s/) with kubernetes-validate in strict mode for one
pinned Kubernetes version, compose.yaml with the Compose Specification
schema that check-jsonschema vendors, and the KServe InferenceService with
the models of the KServe SDK, which are generated from KServe's OpenAPI
description (no package ships the CRD's schema file itself).
"""

import importlib.resources
import json
import re

import jsonschema
import kserve.models
import kubernetes.client.models
import kubernetes_validate
import pytest
import yaml

from app.ops.keys import parse_key_file
from app.settings import PROJECT_ROOT, describe, defaults, load_settings
from tests.conftest import Client, RunningServer

KUBERNETES_VERSION = "1.33"
K8S = PROJECT_ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
INFERENCE_SERVICE = K8S / "kserve" / "inferenceservice.yaml"
COMPOSE = PROJECT_ROOT / "compose.yaml"
NGINX = PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf"
SETTINGS = defaults()
# Seconds a replica may still need once its drain and shutdown are over
# (the interpreter exits, the store closes) before it is killed.
MARGIN = 5


def documents(path):
    """Return the YAML documents of one file."""
    with open(path, encoding="utf-8") as handle:
        return [document for document in yaml.safe_load_all(handle)
                if document is not None]


def all_documents():
    """Return ``(file name, document)`` for every Kubernetes manifest."""
    return [(path.name, document) for path in MANIFESTS
            for document in documents(path)]


def find(kind, name=None):
    """Return the one manifest of a kind (and name)."""
    found = [document for _, document in all_documents()
             if document["kind"] == kind
             and name in (None, document["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def compose():
    """Return compose.yaml, parsed."""
    return documents(COMPOSE)[0]


def seconds(duration):
    """Return the seconds of a Compose duration such as ``1m30s``."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(number + unit for number, unit in parts) == duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_every_kind_the_deployment_needs_is_there():
    """Each resource the recipe promises has a manifest."""
    kinds = {document["kind"] for _, document in all_documents()}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service",
                     "HorizontalPodAutoscaler", "PodDisruptionBudget",
                     "StatefulSet"}
    assert documents(INFERENCE_SERVICE)[0]["kind"] == "InferenceService"


@pytest.mark.parametrize("name, document", all_documents(),
                         ids=lambda value: value if isinstance(value, str)
                         else f"{value['kind']}/{value['metadata']['name']}")
def test_manifest_is_valid_kubernetes(name, document):
    """kubernetes-validate, strict: no unknown field, every type right."""
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_mistake():
    """A misspelt field fails, so the validation above tests something."""
    document = find("Deployment")
    broken = json.loads(json.dumps(document))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = "/health/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION,
                                     strict=True)


def pod_containers():
    """Return ``(pod spec, container)`` of the Deployment and the KServe one.

    A KServe predictor is a pod spec with KServe's fields added.
    """
    deployment = find("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    predictor = documents(INFERENCE_SERVICE)[0]["spec"]["predictor"]
    return [(pod, pod["containers"][0]),
            (predictor, predictor["containers"][0])]


def config_map():
    """Return the settings the ConfigMap gives the service."""
    return find("ConfigMap", "wordcount-settings")["data"]


def test_config_map_holds_valid_settings_only():
    """Every key names a setting, and the values load without error."""
    names = {f"APP_{name.upper()}" for name, *_ in describe()}
    data = config_map()
    assert set(data) <= names, set(data) - names
    settings = load_settings(environ=data, config_files=())
    assert settings.store == "redis"
    assert str(settings.api_keys_file) == data["APP_API_KEYS_FILE"]


def test_ports_agree_with_the_settings():
    """Container, probes and Services use the port the service binds."""
    port = int(config_map()["APP_PORT"])
    assert port == SETTINGS.port == 8080
    for pod, container in pod_containers():
        assert [entry["containerPort"] for entry in container["ports"]] == [
            port]
        names = {entry.get("name") for entry in container["ports"]}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[kind]["httpGet"]["port"] in names | {port}
    service = find("Service", "wordcount")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    redis = find("StatefulSet", "wordcount-redis")
    redis_port = redis["spec"]["template"]["spec"]["containers"][0][
        "ports"][0]["containerPort"]
    assert config_map()["APP_REDIS_URL"] == (
        f"redis://wordcount-redis:{redis_port}/0")


def test_probes_ask_routes_the_service_answers(tmp_path):
    """Each probe's path answers 200 on a real server with these settings."""
    paths = {container[kind]["httpGet"]["path"]
             for _, container in pod_containers()
             for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {"/health/live", "/health/ready"} <= paths
    settings = load_settings(environ={}, overrides={
        "port": 0, "sqlite_path": tmp_path / "words.sqlite3"})
    with RunningServer(settings) as server, Client(server.url) as client:
        for path in sorted(paths):
            assert client.get(path).status_code == 200, path


def test_grace_period_covers_prestop_drain_and_shutdown():
    """SIGKILL comes only after preStop, the drain and the shutdown."""
    data = config_map()
    drain = float(data["APP_DRAIN_SECONDS"])
    shutdown = float(data["APP_SHUTDOWN_TIMEOUT"])
    assert drain == SETTINGS.drain_seconds
    assert shutdown == SETTINGS.shutdown_timeout
    for pod, container in pod_containers():
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] >= (
            pre_stop + drain + shutdown + MARGIN)


def test_containers_are_locked_down():
    """Non-root 10001, read-only root, no privilege, no capability."""
    for pod, container in pod_containers():
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {
            "type": "RuntimeDefault"}
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        # A read-only root is only possible without the SQLite file.
        assert config_map()["APP_STORE"] == "redis"


def test_api_key_secret_is_mounted_where_the_setting_points():
    """APP_API_KEYS_FILE names the Secret's key file, which parses."""
    secret = find("Secret", "wordcount-api-keys")
    keys_file = config_map()["APP_API_KEYS_FILE"]
    folder, file_name = keys_file.rsplit("/", 1)
    assert file_name in secret["stringData"]
    parse_key_file(secret["stringData"][file_name])
    for pod, container in pod_containers():
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        (name,) = [name for name, mount in mounts.items()
                   if mount["mountPath"] == folder]
        assert mounts[name]["readOnly"] is True
        assert volumes[name]["secret"]["secretName"] == "wordcount-api-keys"


def test_autoscaler_and_budget_target_the_deployment():
    """The HPA scales the Deployment on CPU; the PDB covers its pods."""
    deployment = find("Deployment")
    labels = deployment["spec"]["selector"]["matchLabels"]
    hpa = find("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == (
        deployment["metadata"]["name"])
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = find("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    assert find("Service", "wordcount")["spec"]["selector"] == labels


def test_redis_keeps_its_append_only_file_on_a_volume():
    """Redis runs with AOF (fsync always) on a persistent volume claim."""
    redis = find("StatefulSet", "wordcount-redis")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "always"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in (
        container["volumeMounts"])


def model_class(type_name):
    """Return the SDK model class of an OpenAPI type name, None if none.

    KServe's description names a few Kubernetes types by their Go
    package (K8sIoApiAppsV1DeploymentStrategy is V1DeploymentStrategy).
    """
    for module in (kserve.models, kubernetes.client.models):
        found = getattr(module, type_name, None)
        if found is not None:
            return found
    go_name = re.fullmatch(r"K8sIoApi[A-Z][a-z]+(V\d\w*)", type_name)
    if go_name:
        return getattr(kubernetes.client.models, go_name.group(1), None)
    return None


SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float),
           "datetime": str, "ResourceQuantity": (str, int),
           "V1beta1MetricQuantity": (str, int), "V1Time": str}


def check_against_models(value, type_name, where="InferenceService"):
    """Return the problems of a value against an SDK model type.

    Every field must be one the model declares, and every value of the
    declared type, all the way down.
    """
    container = re.fullmatch(r"(?:list|List)\[(.+)\]", type_name)
    if container:
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [problem for index, item in enumerate(value)
                for problem in check_against_models(
                    item, container.group(1), f"{where}[{index}]")]
    mapping = re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])",
                           type_name)
    if mapping:
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        inner = mapping.group(1) or mapping.group(2)
        return [problem for key, item in value.items()
                for problem in check_against_models(item, inner,
                                                    f"{where}.{key}")]
    if type_name == "object":
        return []
    if type_name in SCALARS:
        wanted = SCALARS[type_name]
        if isinstance(value, bool) and type_name != "bool":
            return [f"{where}: expected {type_name}, got a boolean"]
        return [] if isinstance(value, wanted) else [
            f"{where}: expected {type_name}, got {value!r}"]
    model = model_class(type_name)
    if model is None:
        return [f"{where}: no model for type {type_name}"]
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({type_name})"]
    fields = {json_name: model.openapi_types[attribute]
              for attribute, json_name in model.attribute_map.items()}
    problems = [f"{where}.{key}: not a field of {type_name}"
                for key in value if key not in fields]
    return problems + [
        problem for key, item in value.items() if key in fields
        for problem in check_against_models(item, fields[key],
                                            f"{where}.{key}")]


def test_inference_service_matches_the_kserve_models():
    """No field KServe's InferenceService does not have, every type right."""
    document = documents(INFERENCE_SERVICE)[0]
    assert document["apiVersion"] == "serving.kserve.io/v1beta1"
    assert check_against_models(document, "V1beta1InferenceService") == []


def test_kserve_model_check_catches_a_mistake():
    """A field in the wrong place fails, so the check tests something."""
    document = documents(INFERENCE_SERVICE)[0]
    document["spec"]["predictor"]["protocolVersion"] = "v2"
    document["spec"]["predictor"]["containers"][0]["port"] = 8080
    problems = check_against_models(document, "V1beta1InferenceService")
    assert len(problems) == 2, problems


def test_inference_service_pod_part_is_a_valid_pod_spec():
    """The predictor's pod fields pass strict Kubernetes validation."""
    predictor = documents(INFERENCE_SERVICE)[0]["spec"]["predictor"]
    pod_fields = set(kubernetes.client.models.V1PodSpec.attribute_map
                     .values())
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "predictor"},
           "spec": {key: value for key, value in predictor.items()
                    if key in pod_fields}}
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_inference_service_is_a_v2_custom_predictor():
    """Follow KServe's rules for a custom V2 predictor on the port."""
    document = documents(INFERENCE_SERVICE)[0]
    assert document["metadata"]["annotations"][
        "serving.kserve.io/deploymentMode"] in ("Standard", "RawDeployment")
    predictor = document["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    env = {entry["name"]: entry["value"] for entry in container["env"]}
    assert env["PROTOCOL"] == "v2"
    assert container["ports"] == [{"containerPort": SETTINGS.port,
                                   "protocol": "TCP"}]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "wordcount-settings"}}]
    assert container["image"] == find("Deployment")["spec"]["template"][
        "spec"]["containers"][0]["image"]
    assert container["readinessProbe"]["httpGet"]["path"].startswith("/v2/")


def compose_schema():
    """Return the Compose Specification schema check-jsonschema vendors."""
    vendored = importlib.resources.files(
        "check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text(encoding="utf-8"))


def test_compose_file_follows_the_compose_specification():
    """compose.yaml is valid against the Compose Specification schema."""
    schema = compose_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(compose())


def test_compose_schema_catches_a_mistake():
    """A misplaced key fails, so the validation above tests something."""
    document = compose()
    document["services"]["app"]["replicas"] = 3
    errors = list(jsonschema.Draft202012Validator(
        compose_schema()).iter_errors(document))
    assert errors


def test_compose_replicas_are_configured_like_the_cluster():
    """Redis store, valid settings, the drain and a grace period for it."""
    app = compose()["services"]["app"]
    env = app["environment"]
    names = {f"APP_{name.upper()}" for name, *_ in describe()}
    assert set(env) <= names, set(env) - names
    settings = load_settings(environ=env, config_files=())
    assert settings.store == "redis" and settings.host == "0.0.0.0"
    assert settings.drain_seconds == SETTINGS.drain_seconds
    assert settings.shutdown_timeout == SETTINGS.shutdown_timeout
    assert seconds(app["stop_grace_period"]) >= (
        settings.drain_seconds + settings.shutdown_timeout + MARGIN)
    assert app["deploy"]["replicas"] >= 2
    assert app["expose"] == [str(settings.port)]
    assert compose()["services"]["redis"]["healthcheck"]["test"] == [
        "CMD", "redis-cli", "ping"]


def test_compose_health_check_is_the_dockerfile_one():
    """The replicas' health check is the image's own HEALTHCHECK command."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    command = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", dockerfile,
                        re.DOTALL).group(1)
    expected = ["CMD"] + json.loads(command)
    assert compose()["services"]["app"]["healthcheck"]["test"] == expected
    assert "/health/ready" in expected[-1]


def test_compose_redis_keeps_an_append_only_file_on_a_volume():
    """Redis in compose.yaml: AOF with fsync always, data in a volume."""
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendfsync") + 1] == "always"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert redis["volumes"] == ["redis-data:/data"]
    assert "redis-data" in compose()["volumes"]
    for service in compose()["services"].values():
        assert service["restart"] == "unless-stopped"
        assert "healthcheck" in service


def test_compose_mounts_the_shipped_front_configuration():
    """Give nginx the template and upstream list this repository ships."""
    nginx = compose()["services"]["nginx"]
    for volume in nginx["volumes"]:
        source = volume.split(":", 1)[0]
        assert (PROJECT_ROOT / source).is_file(), source
    assert nginx["environment"]["NGINX_ENVSUBST_FILTER"] == "^FRONT_"
    placeholders = set(re.findall(r"\$\{(\w+)\}", NGINX.read_text()))
    assert placeholders == {"FRONT_LISTEN"}
    assert placeholders <= set(nginx["environment"])


def nginx_directive(name, text=None):
    """Return the values of every ``name ...;`` directive in nginx.conf."""
    text = NGINX.read_text() if text is None else text
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)


def test_front_limits_agree_with_the_service():
    """Body limit, timeouts and keep-alive fit the service's settings."""
    (body_limit,) = nginx_directive("client_max_body_size")
    assert body_limit == "32m"
    assert 32 * 2 ** 20 == SETTINGS.max_upload_bytes
    assert str(SETTINGS.max_upload_bytes) in NGINX.read_text()
    # An idle upstream connection is closed by nginx before the service
    # would close it (request_timeout), never the other way round.
    keepalive = [value for value in nginx_directive("keepalive_timeout")
                 if value.endswith("s")]
    upstream_idle = float(keepalive[-1].rstrip("s"))
    assert upstream_idle < SETTINGS.request_timeout
    (read_timeout,) = nginx_directive("proxy_read_timeout")
    assert float(read_timeout.rstrip("s")) > (
        SETTINGS.inference_wait_timeout)
    assert nginx_directive("proxy_request_buffering") == ["on"]
