"""The deployment files: each parses, validates against its schema or tool, and refers only
to files, routes, settings and metrics that exist.

Offline throughout: Kubernetes manifests are checked against the schemas `kubernetes-validate`
ships; the Prometheus and Alertmanager files by Debian's `promtool` and `amtool` (installed by
`.ci/run`; a laptop without them skips those tests); the rules' expressions and labels by
`promtool test rules` on synthetic series. `kubectl kustomize` and `systemd-analyze`, where a
machine happens to have them, check the kustomization and the unit as their tools see them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from router.config import load_team_model
from router.metrics import Metrics
from router.settings import Settings
from router.store.factory import open_store
from router.store.postgres import PostgresStore
from router.web import health, intake

from configs import SHIPPED_CONFIG
from services import require_binary

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
ALERTMANAGER = DEPLOY / "alertmanager"
UNIT = DEPLOY / "systemd" / "pipeline-alert-router.service"
# The oldest Kubernetes the manifests promise to work on, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
ROUTER_SERVICE = "pipeline-alert-router"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _routes() -> set[str]:
    """The paths the router serves that deployments point at."""
    return {r.path for r in (*health.routes, *intake.routes) if isinstance(r, web.RouteDef)}


def _assert_settings(names: Iterator[str] | list[str], where: str) -> None:
    """Every ROUTER_* variable named is one the router reads (a typo would be ignored)."""
    for name in names:
        assert name.startswith("ROUTER_"), f"{where}: {name}"
        assert name.removeprefix("ROUTER_").lower() in Settings.model_fields, f"{where}: {name}"


# Kubernetes ------------------------------------------------------------------------------


def _kustomization() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(KUBERNETES / "kustomization.yaml")
    return document


def _generated_config_map() -> dict[str, Any]:
    """The ConfigMap the kustomization's configMapGenerator makes (name without its hash)."""
    [generator] = _kustomization()["configMapGenerator"]
    files = [(KUBERNETES / f).resolve() for f in generator["files"]]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
        "data": {f.name: f.read_text() for f in files},
    }


def _manifests() -> list[dict[str, Any]]:
    found = [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in _documents(path)]
    return [doc for doc in found if doc["kind"] != "Kustomization"] + [_generated_config_map()]


def _by_kind(kind: str) -> dict[str, Any]:
    [document] = [doc for doc in _manifests() if doc["kind"] == kind]
    return document


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_manifest_validates_against_its_schema(version: str) -> None:
    manifests = _manifests()
    kinds = {doc["kind"] for doc in manifests}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    }
    for document in manifests:
        # strict: an unknown field (a typo such as `readinessprobe`) is an error.
        kubernetes_validate.validate(document, version, strict=True)


def test_the_kustomization_lists_every_manifest_and_builds_the_config_map_from_config() -> None:
    kustomization = _kustomization()
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")}
    # The Secret example is applied by hand, after real values are put in it.
    assert listed == on_disk - {"kustomization.yaml", "secret.example.yaml"}
    [generator] = kustomization["configMapGenerator"]
    generated = {(KUBERNETES / f).resolve() for f in generator["files"]}
    assert generated == {p.resolve() for p in SHIPPED_CONFIG.glob("*.yaml")}


def test_the_generated_config_map_is_a_valid_team_model(tmp_path: Path) -> None:
    for name, text in _generated_config_map()["data"].items():
        (tmp_path / name).write_text(text)
    model = load_team_model(tmp_path)
    shipped = load_team_model(SHIPPED_CONFIG)
    assert [p.id for p in model.pipelines] == [p.id for p in shipped.pipelines]


def test_the_deployment_is_one_non_root_read_only_pod_probed_on_readyz_and_healthz() -> None:
    deployment = _by_kind("Deployment")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] == 1  # SQLite: one writer
    assert spec["strategy"]["type"] == "Recreate"  # never two pods on the one volume
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    _assert_settings(list(env), "deployment env")
    port = int(env["ROUTER_PORT"])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz", "/metrics"} <= _routes()
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["config"]["mountPath"] == env["ROUTER_CONFIG"]
    assert mounts["config"]["readOnly"] is True
    config_map = _generated_config_map()["metadata"]["name"]
    assert volumes["config"]["configMap"]["name"] == config_map
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert claim == _by_kind("PersistentVolumeClaim")["metadata"]["name"]
    assert env["ROUTER_DATABASE_URL"] == f"sqlite:///{mounts['data']['mountPath']}/router.db"
    [source] = container["envFrom"]
    assert source["secretRef"]["name"] == _by_kind("Secret")["metadata"]["name"]
    # The drain (ROUTER_DRAIN_TIMEOUT_SECONDS) must finish before the kubelet's SIGKILL.
    assert pod["terminationGracePeriodSeconds"] > Settings().drain_timeout_seconds


def test_service_pdb_and_secret_match_the_deployment() -> None:
    labels = _by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    service, budget = _by_kind("Service"), _by_kind("PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    _assert_settings(list(_by_kind("Secret")["stringData"]), "secret.example.yaml")


def test_kubectl_kustomize_builds_manifests_that_validate() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomization is checked field by field")
    built = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(KUBERNETES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)
    [config_map] = [d for d in documents if d["kind"] == "ConfigMap"]
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    # kustomize renamed the ConfigMap with its content hash, and the Deployment with it.
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_map["data"] == _generated_config_map()["data"]


# Compose --------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = _yaml(DEPLOY / "compose.yaml")
    return document


def _binds(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """A service's bind mounts: container path → (host path, read-only)."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        if source.startswith("."):
            binds[target] = ((DEPLOY / source).resolve(), "ro" in options)
    return binds


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value.removeprefix("'").removesuffix("'")
    return values


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _dockerfile():
        if line.startswith("ENV "):
            env.update(pair.partition("=")[::2] for pair in shlex.split(line[4:]))
    return env


def test_compose_parses_and_every_file_it_mounts_exists() -> None:
    services = _compose()["services"]
    assert {"router", "prometheus", "alertmanager", "mailpit"} <= services.keys()
    for name, service in services.items():
        for host, _read_only in _binds(service).values():
            assert host.exists(), f"{name} mounts {host}, which does not exist"
        for env_file in service.get("env_file", []):
            assert (DEPLOY / env_file).is_file(), f"{name}: {env_file}"
        if "build" in service:
            context = DEPLOY / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file()
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert {n for n in named if not n.startswith(".")} <= set(_compose()["volumes"])


def test_compose_runs_the_router_on_config_read_only_and_keeps_sqlite_in_a_volume() -> None:
    router = _compose()["services"]["router"]
    image_env = _dockerfile_env()
    binds = _binds(router)
    assert binds[image_env["ROUTER_CONFIG"]] == (SHIPPED_CONFIG.resolve(), True)
    volumes = dict(v.split(":", 1) for v in router["volumes"] if not v.startswith("."))
    database = image_env["ROUTER_DATABASE_URL"].removeprefix("sqlite:///")
    assert Path(database).parent == Path(volumes["router-data"])
    assert f'VOLUME ["{volumes["router-data"]}"]' in _dockerfile()
    settings = {**_env_file(DEPLOY / router["env_file"][0]), **router["environment"]}
    _assert_settings(list(settings), "compose router")
    json.loads(settings["ROUTER_INBOUND_TOKENS"])
    assert router["read_only"] is True


def test_alertmanager_sends_to_the_router_with_a_token_the_router_accepts() -> None:
    config = _yaml(ALERTMANAGER / "alertmanager.yml")
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] == ROUTER_SERVICE
    [webhook] = receivers[ROUTER_SERVICE]["webhook_configs"]
    assert webhook["url"] == "http://router:8080/api/v1/alerts/alertmanager"
    assert webhook["send_resolved"] is True
    assert "/api/v1/alerts/alertmanager" in _routes()
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    compose = _compose()["services"]
    token_file, _ = _binds(compose["alertmanager"])[authorization["credentials_file"]]
    router_env = _env_file(DEPLOY / compose["router"]["env_file"][0])
    tokens = json.loads(router_env["ROUTER_INBOUND_TOKENS"])
    assert tokens["alertmanager"] == token_file.read_text().strip()
    assert config["route"]["group_by"] == ["alertname", "pipeline"]
    assert _binds(compose["alertmanager"])["/etc/alertmanager/alertmanager.yml"][0] == (
        ALERTMANAGER / "alertmanager.yml"
    )


def test_grafana_contact_point_posts_to_the_grafana_receiver() -> None:
    document = _yaml(DEPLOY / "grafana" / "contact-point.yaml")
    [point] = document["contactPoints"]
    [receiver] = point["receivers"]
    assert receiver["type"] == "webhook"
    assert receiver["settings"]["url"] == "http://router:8080/api/v1/alerts/grafana"
    assert "/api/v1/alerts/grafana" in _routes()
    assert receiver["settings"]["authorization_scheme"] == "Bearer"


def test_prometheus_scrapes_the_router_and_loads_rule_files_that_exist() -> None:
    config = _yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    router = jobs[ROUTER_SERVICE]
    assert router["metrics_path"] == "/metrics"
    assert router["static_configs"][0]["targets"] == ["router:8080"]
    mounted = _binds(_compose()["services"]["prometheus"])
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()
        # Relative rule files are read next to the config inside the container too.
        assert mounted[f"/etc/prometheus/{rule_file}"] == ((PROMETHEUS / rule_file), True)


# Rules ----------------------------------------------------------------------------------


def _rules(name: str) -> list[dict[str, Any]]:
    return [rule for group in _yaml(PROMETHEUS / name)["groups"] for rule in group["rules"]]


def _exported_series() -> set[str]:
    """Every series name the router's /metrics can have."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def test_router_rules_use_only_metrics_the_router_exports_and_route_around_it() -> None:
    exported = _exported_series()
    for rule in _rules("router-rules.yml"):
        used = set(re.findall(r"\brouter_[a-z_]+", rule["expr"]))
        assert used <= exported, f"{rule['alert']}: {used - exported}"
        assert rule["labels"]["service"] == ROUTER_SERVICE
        assert "pipeline" not in rule["labels"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_pipeline_rules_carry_a_pipeline_label_the_router_routes_on() -> None:
    model = load_team_model(SHIPPED_CONFIG)
    assert model.routing.pipeline_label == "pipeline"
    investor = {p.id for p in model.pipelines if p.investor_reported}
    covered = set()
    for rule in _rules("pipeline-rules.yml"):
        pipeline = rule["labels"]["pipeline"]
        assert model.pipeline(pipeline) is not None, f"{rule['alert']}: {pipeline}"
        covered.add(pipeline)
    assert covered == investor == {"aggregate-profit", "aggregate-growth", "aggregate-engagement"}


def test_promtool_checks_the_config_and_both_rule_files() -> None:
    promtool = require_binary("promtool", "checks deploy/prometheus (Debian: prometheus)")
    rule_files = [str(PROMETHEUS / name) for name in ("router-rules.yml", "pipeline-rules.yml")]
    for command in (["check", "rules", *rule_files], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            [promtool, *command],
            cwd=PROMETHEUS,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class RuleCase:
    """Input series (1 m apart) for one rule file, and the `alert`s expected at `at`."""

    rule_file: str
    alert: str
    series: list[tuple[str, str]]
    at: str
    expected: list[dict[str, str]]

    @property
    def id(self) -> str:
        return f"{self.alert}-{'fires' if self.expected else 'quiet'}"


# promtool compares annotations too; the cases drop them (the templates are checked by
# `promtool check rules`) and test what routing depends on: when a rule fires, and its labels.
TARGET = 'job="pipeline-alert-router",instance="router:8080"'
ROUTER_ALERT = {"service": ROUTER_SERVICE, "job": ROUTER_SERVICE, "instance": "router:8080"}
RULE_CASES = [
    RuleCase(
        "router-rules.yml",
        "AlertRouterOutboxStuck",
        [(f"router_outbox_oldest_undelivered_seconds{{{TARGET}}}", "0+60x40")],
        "25m",
        [{**ROUTER_ALERT, "severity": "critical"}],
    ),
    RuleCase(
        "router-rules.yml",
        "AlertRouterOutboxStuck",
        [(f"router_outbox_oldest_undelivered_seconds{{{TARGET}}}", "30x40")],
        "25m",
        [],
    ),
    RuleCase(
        "router-rules.yml",
        "AlertRouterDeliveriesFailing",
        [
            (
                f'router_notifications_total{{{TARGET},channel="webhook",result="retried"}}',
                "0+10x40",
            ),
            (f'router_notifications_total{{{TARGET},channel="webhook",result="sent"}}', "0+1x40"),
            (f'router_notifications_total{{{TARGET},channel="email",result="sent"}}', "0+10x40"),
        ],
        "25m",
        [{"service": ROUTER_SERVICE, "severity": "critical", "channel": "webhook"}],
    ),
    RuleCase(
        "router-rules.yml",
        "AlertRouterDown",
        [(f"up{{{TARGET}}}", "1 1 0x10")],
        "6m",
        [{**ROUTER_ALERT, "severity": "critical"}],
    ),
    RuleCase(
        "router-rules.yml",
        "AlertRouterUnknownPipeline",
        [
            (
                f'router_alerts_received_total{{{TARGET},source="grafana",pipeline="unknown"}}',
                "0 1 2",
            )
        ],
        "2m",
        [{"service": ROUTER_SERVICE, "severity": "info", "source": "grafana"}],
    ),
    RuleCase(
        "pipeline-rules.yml",
        "CogsNulls",
        [('pipeline_table_null_rows{job="dq",table="cogs",column="unit_cost"}', "0 0 12")],
        "2m",
        [{"pipeline": "aggregate-profit", "severity": "critical", "column": "unit_cost"}],
    ),
    RuleCase(
        "pipeline-rules.yml",
        "PricingFeedStale",
        # Last updated at the epoch; at 4 h the feed is 4 h old, over the 3 h limit.
        [('pipeline_source_last_update_timestamp_seconds{source="product_pricing"}', "0x300")],
        "4h",
        [{"pipeline": "aggregate-profit", "severity": "critical"}],
    ),
    RuleCase(
        "pipeline-rules.yml",
        "SessionLogsMissing",
        [('pipeline_events_ingested_total{stream="session_logs"}', "0+100x30 3000x60")],
        "80m",
        [{"pipeline": "aggregate-engagement", "severity": "critical"}],
    ),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=[case.id for case in RULE_CASES])
def test_promtool_rule_unit_tests(tmp_path: Path, case: RuleCase) -> None:
    promtool = require_binary("promtool", "unit-tests deploy/prometheus rules (Debian: prometheus)")
    groups = _yaml(PROMETHEUS / case.rule_file)["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / case.rule_file).write_text(yaml.safe_dump({"groups": groups}))
    alert_test = {
        "eval_time": case.at,
        "alertname": case.alert,
        "exp_alerts": [{"exp_labels": labels} for labels in case.expected],
    }
    test = {
        "rule_files": [case.rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "alert_rule_test": [alert_test],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_checks_the_alertmanager_config_and_its_routes() -> None:
    why = "checks deploy/alertmanager (Debian: prometheus-alertmanager)"
    amtool = require_binary("amtool", why)
    config = str(ALERTMANAGER / "alertmanager.yml")

    def amtool_run(*args: str) -> str:
        done = subprocess.run(
            [amtool, *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    amtool_run("check-config", config)
    route = ("config", "routes", "test", f"--config.file={config}")
    # Pipeline alerts go to the router; the router's own alerts go around it.
    assert amtool_run(*route, "alertname=CogsNulls", "pipeline=aggregate-profit") == ROUTER_SERVICE
    assert amtool_run(*route, "alertname=AlertRouterDown", f"service={ROUTER_SERVICE}") == (
        "router-operators"
    )


# Dockerfile and systemd ------------------------------------------------------------------


def test_the_dockerfile_copies_files_that_exist_and_installs_the_package_as_make_does() -> None:
    instructions = _dockerfile()
    copied = []
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _target = line.split()[1:]
            copied += sources
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
    # What `pip install .` needs: the project file, its readme and its packages.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= set(copied)
    [install] = [line for line in instructions if line.startswith("RUN ") and "pip install" in line]
    assert re.search(r"pip install (--\S+ )*\.( |$)", install), install
    # `make run` (the README's command) installs the same project, with the dev tools.
    assert "pip install --quiet -e '.[dev]'" in (ROOT / "Makefile").read_text()
    assert any(line.startswith("USER ") and "root" not in line for line in instructions)
    assert any(line.startswith("HEALTHCHECK ") and "/healthz" in line for line in instructions)
    _assert_settings([k for k in _dockerfile_env() if k.startswith("ROUTER_")], "Dockerfile")


def _unit() -> dict[str, list[str]]:
    """The unit's settings, key → values (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_is_hardened_and_keeps_sqlite_in_its_state_directory() -> None:
    unit = _unit()
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "KillSignal": "SIGTERM",
    }.items():
        assert unit[key] == [value], key
    env = dict(e.split("=", 1) for e in unit["Environment"])
    _assert_settings([k for k in env if k.startswith("ROUTER_")], "systemd unit")
    [state] = unit["StateDirectory"]
    assert env["ROUTER_DATABASE_URL"] == f"sqlite:////var/lib/{state}/router.db"
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert float(unit["TimeoutStopSec"][0]) > Settings().drain_timeout_seconds


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit is checked key by key")
    # verify wants ExecStart to exist: stand an existing program in for the installed router.
    stand_in = shutil.which("true") or "/bin/true"
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={stand_in}", UNIT.read_text())
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False, timeout=60
    )
    problems = [line for line in done.stderr.splitlines() if UNIT.name in line or "Unknown" in line]
    assert done.returncode == 0, done.stderr
    assert problems == [], problems


def test_the_ha_compose_runs_two_stateless_routers_on_one_postgresql() -> None:
    document: dict[str, Any] = _yaml(DEPLOY / "compose.ha.yaml")
    services = document["services"]
    routers = {name: s for name, s in services.items() if name.startswith("router")}
    assert len(routers) >= 2
    urls = set()
    for name, router in routers.items():
        settings = {**_env_file(DEPLOY / router["env_file"][0]), **router["environment"]}
        _assert_settings(list(settings), f"compose.ha {name}")
        urls.add(settings["ROUTER_DATABASE_URL"])
        assert isinstance(open_store(settings["ROUTER_DATABASE_URL"]), PostgresStore)
        for host, read_only in _binds(router).values():
            assert host.exists(), f"{name} mounts {host}, which does not exist"
            assert read_only, f"{name}: {host} must be read-only: the state is in PostgreSQL"
        assert not [v for v in router["volumes"] if not v.startswith(".")], "stateless"
        assert router["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert len(urls) == 1, "every replica must share the one database"
    assert "postgres" in services


def test_the_ha_kustomization_runs_two_pods_on_postgresql_without_a_volume() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the HA kustomization cannot be built")
    built = subprocess.run(
        [
            kubectl,
            "kustomize",
            "--load-restrictor",
            "LoadRestrictionsNone",
            str(DEPLOY / "kubernetes-ha"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[-1], strict=True)
    kinds = {doc["kind"] for doc in documents}
    assert "PersistentVolumeClaim" not in kinds
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    [pdb] = [d for d in documents if d["kind"] == "PodDisruptionBudget"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    [container] = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ROUTER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "ROUTER_DATABASE_URL"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/router/config", "/tmp"}
    assert pdb["spec"] == {"minAvailable": 1, "selector": pdb["spec"]["selector"]}
