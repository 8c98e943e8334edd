"""deploy/ checked with the real tools (issue 17; ctest deploy_files, label deploy).

* deploy/docker-compose.yml through the Compose CLI (`docker-compose config`;
  no Docker engine needed): `config -q` for no profile and each seed profile,
  then the resolved JSON of each: the services of the profile, replicas >= 2,
  health checks, `depends_on` conditions, published ports, the Prometheus and
  Grafana mounts; every embedstream service's command, environment and
  mounted config file run through `embedstream serve --print-config` (so every
  flag, variable and key is one serve knows, and means what the layout says).
* deploy/helm/embedstream: `helm lint --strict`, `helm template` with the
  defaults (Deployment), ci/embedded-values.yaml (StatefulSet with
  volumeClaimTemplates) and ci/monitoring-values.yaml (ServiceMonitor, HPA on
  consumer lag, Secrets); the rendered kinds, probes, config and secrets; and
  kubeconform -strict against the Kubernetes JSON schemas (offline), which
  must also refuse a broken manifest.

The tools come from scripts/deploy_tools.sh (ctest fixture deploy_tools_setup):
EMBEDSTREAM_DEPLOY_TOOLS_DIR, default .cache/deploy-tools.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOLS = pathlib.Path(os.environ.get("EMBEDSTREAM_DEPLOY_TOOLS_DIR", REPO / ".cache/deploy-tools"))
COMPOSE_FILE = REPO / "deploy/docker-compose.yml"
CHART = REPO / "deploy/helm/embedstream"

# What each profile must run, exactly (services without a profile run in all).
# No --profile: deploy/.env's COMPOSE_PROFILES=all, the whole system.
BASE = {"kafka", "kafka-init", "kafka-ui", "prometheus", "grafana"}
ALL = BASE | {"postgres", "qdrant", "redis", "embedstream-all"}
PROFILES = {
    None: ALL,
    "all": ALL,
    "seed000": BASE | {"embedstream-seed000"},
    "seed001": BASE | {"postgres", "embedstream-seed001"},
    "seed002": BASE | {"qdrant", "embedstream-seed002"},
    "seed003": BASE | {"postgres", "redis", "embedstream-seed003"},
}
# The infrastructure each layout's embedstream must wait for (healthy).
LAYOUT_DEPS = {
    "all": {"kafka", "postgres", "qdrant", "redis"},
    "seed000": {"kafka"},
    "seed001": {"kafka", "postgres"},
    "seed002": {"kafka", "qdrant"},
    "seed003": {"kafka", "postgres", "redis"},
}
# Seed-compatible host ports: every profile, and per layout.
PORTS_ALL = {9092, 9090, 3000}
PORTS_LAYOUT = {"all": {5000, 6333}, "seed000": {5000}, "seed001": {5000}, "seed002": {5000, 6333}, "seed003": {5000}}


def tool(name: str) -> str:
    path = TOOLS / "bin" / name
    assert os.access(path, os.X_OK), f"{path} missing: run scripts/deploy_tools.sh"
    return str(path)


def schema_dir() -> pathlib.Path:
    dirs = sorted((TOOLS / "schemas").glob("*-standalone-strict"))
    assert len(dirs) == 1, f"expected one schema set in {TOOLS / 'schemas'}, found {dirs}"
    assert (dirs[0] / "deployment-apps-v1.json").exists()
    return dirs[0]


def clean_env(extra=None) -> dict:
    """The environment without anything that changes what Compose or Helm read."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKER_", "HELM_", "KUBE"))
           and k not in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")}
    env.update(extra or {})
    return env


def compose(*args, profile=None, file=COMPOSE_FILE, check=True):
    cmd = [tool("docker-compose"), "-f", str(file)]
    if profile:
        cmd += ["--profile", profile]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, env=clean_env(), timeout=120)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd + list(args))}: {r.returncode}\n{r.stderr}"
    return r


_resolved = {}


def resolved(profile):
    if profile not in _resolved:
        _resolved[profile] = json.loads(compose("config", "--format", "json", profile=profile).stdout)
    return _resolved[profile]


def published_ports(service) -> set:
    """Every host port a service publishes (ranges expanded)."""
    out = set()
    for p in service.get("ports") or []:
        pub = str(p.get("published", ""))
        if "-" in pub:
            lo, hi = (int(x) for x in pub.split("-"))
            out |= set(range(lo, hi + 1))
        elif pub:
            out.add(int(pub))
    return out


def layout(profile) -> str:
    """The layout a profile runs: no --profile is deploy/.env's `all`."""
    return profile or "all"


def one_shot(service) -> bool:
    return service.get("restart") == "no"


# ------------------------------------------------------------------ compose

@pytest.mark.parametrize("profile", list(PROFILES), ids=lambda p: p or "default")
def test_compose_config_quiet(profile):
    r = compose("config", "-q", profile=profile)
    assert r.stdout == "" and r.stderr == "", f"warnings from compose config:\n{r.stderr}"


def test_compose_rejects_a_broken_file(tmp_path):
    """The same CLI fails on what the real engine would refuse."""
    text = COMPOSE_FILE.read_text()
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(text.replace("kafka: {condition: service_healthy}\n      kafka-init:",
                                "kafak: {condition: service_healthy}\n      kafka-init:", 1))
    assert bad.read_text() != text
    r = compose("config", "-q", profile="all", file=bad, check=False)
    assert r.returncode != 0 and "kafak" in r.stderr, r.stderr
    bad.write_text(text.replace("condition: service_healthy", "condition: service_happy", 1))
    r = compose("config", "-q", profile="all", file=bad, check=False)
    assert r.returncode != 0 and "condition value must be one of" in r.stderr, r.stderr


@pytest.mark.parametrize("profile", list(PROFILES), ids=lambda p: p or "default")
def test_compose_profile(profile):
    cfg = resolved(profile)
    services = cfg["services"]
    assert set(services) == PROFILES[profile]

    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        if one_shot(svc):
            # A job: no health check, and whatever waits for it waits for its success.
            waiting = [n for n, s in services.items() if name in (s.get("depends_on") or {})]
            assert waiting or profile is None, f"{name}: a one-shot service nothing waits for"
            for n in waiting:
                assert services[n]["depends_on"][name]["condition"] == "service_completed_successfully", n
            continue
        assert hc.get("test") and not hc.get("disable"), f"{name} has no health check"
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: {hc['test']}"
        for dep, how in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on {dep}, not in profile {profile}"
            want = "service_completed_successfully" if one_shot(services[dep]) else "service_healthy"
            assert how["condition"] == want, f"{name} -> {dep}: {how['condition']}"

    ports = set().union(*(published_ports(s) for s in services.values()))
    want_ports = PORTS_ALL | PORTS_LAYOUT[layout(profile)]
    assert want_ports <= ports, f"missing published ports {want_ports - ports}"

    # Prometheus runs deploy/prometheus's files; Grafana is provisioned from deploy/grafana.
    mounts = {v["target"]: pathlib.Path(v["source"]) for v in services["prometheus"]["volumes"]
              if v["type"] == "bind"}
    assert mounts["/etc/prometheus/prometheus.yml"] == REPO / "deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == REPO / "deploy/prometheus/alerts.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    gmounts = {v["target"]: pathlib.Path(v["source"]) for v in services["grafana"]["volumes"]
               if v["type"] == "bind"}
    assert gmounts["/etc/grafana/provisioning"] == REPO / "deploy/grafana/provisioning"
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/embedstream.yml").read_text())
    dash_dir = provider["providers"][0]["options"]["path"]
    assert gmounts[f"{dash_dir}/embedstream.json"] == REPO / "deploy/grafana/embedstream.json"
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    for m in list(mounts.values()) + list(gmounts.values()):
        assert m.exists(), m

    layouts = [n for n in services if n.startswith("embedstream-")]
    assert layouts == [f"embedstream-{layout(profile)}"]
    svc = services[layouts[0]]
    assert svc["deploy"]["replicas"] >= 2
    # Every replica gets a host port of the range (a fixed port would clash).
    assert len(published_ports(svc)) >= svc["deploy"]["replicas"]
    assert {p["target"] for p in svc["ports"]} == {5000}
    assert pathlib.Path(svc["build"]["context"]) == REPO
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert svc["healthcheck"]["test"][:3] == ["CMD", "embedstream", "health"]
    deps = svc["depends_on"]
    for infra in LAYOUT_DEPS[layout(profile)]:
        assert deps[infra]["condition"] == "service_healthy", (infra, deps)
    # Prometheus finds every replica through the alias its scrape job resolves.
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "embedstream")
    names = {n for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert names <= set(svc["networks"]["default"]["aliases"]), names
    assert all(sd["port"] == 5000 for sd in job["dns_sd_configs"])
    # One consumer group, reached on a listener the broker advertises inside.
    env = svc["environment"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//{env['KAFKA_BOOTSTRAP_SERVERS']}" in advertised
    assert env["KAFKA_GROUP_ID"] == "embedstream"


def serve_print_config(binary, args, env, mounts=None) -> dict:
    """`embedstream serve ARGS --print-config` with ENV; container paths in ARGS
    replaced by the host files mounted there."""
    mounts = mounts or {}
    args = [str(mounts.get(a, a)) for a in args]
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("KAFKA_", "EMBEDSTREAM_", "DATABASE_", "QDRANT_", "REDIS_"))
                and k != "PORT"}
    full_env.update(env)
    r = subprocess.run([str(binary), *args, "--print-config"], capture_output=True, text=True,
                       env=full_env, timeout=60)
    assert r.returncode == 0, f"embedstream {' '.join(args)} --print-config: {r.returncode}\n{r.stderr}"
    return json.loads(r.stdout)


def test_compose_default_is_the_whole_system():
    """deploy/.env makes `all` the default, and a --profile replaces it."""
    env = dict(line.split("=", 1) for line in (REPO / "deploy/.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env == {"COMPOSE_PROFILES": "all"}
    assert resolved(None) == resolved("all")
    assert "embedstream-all" not in resolved("seed000")["services"]


@pytest.mark.parametrize("profile", [p for p in PROFILES if p])
def test_compose_embedstream_settings_are_real(profile, binary):
    services = resolved(profile)["services"]
    svc = services[f"embedstream-{profile}"]
    mounts = {v["target"]: v["source"] for v in svc.get("volumes") or [] if v["type"] == "bind"}
    env = {k: str(v) for k, v in svc["environment"].items()}
    c = serve_print_config(binary, svc["command"], env, mounts)

    host, _, port = c["kafka"]["bootstrap_servers"].partition(":")
    assert host in services and port == "29092"
    assert c["kafka"]["group_id"] == "embedstream"
    sinks = c["sources"]["kafka"]["sinks"]
    if profile == "seed000":
        assert not c["store"]["enabled"]
        assert c["kafka"]["input_topics"] == ["text-messages"] and c["kafka"]["output_topic"] == "embeddings"
        assert sinks == ["kafka"]
    elif profile == "seed001":
        assert c["postgres"]["host"] in services and c["postgres"]["port"] == 5432
        assert c["sinks"]["postgres"]["mode"] == "text" and sinks == ["postgres"]
        assert c["sources"]["postgres"]["enabled"] and c["search"]["backend"] == "postgres"
    elif profile == "seed002":
        assert c["kafka"]["input_topics"] == ["ecommerce-events"]
        assert "ecommerce-events" in pathlib.Path(mounts["/etc/embedstream/serve.yaml"]).read_text()
        assert re.fullmatch(r"http://qdrant:6333", c["sinks"]["qdrant"]["url"]) and "qdrant" in services
        assert sinks == ["qdrant"] and c["search"]["backend"] == "qdrant"
    elif profile == "all":
        assert c["ingest"]["mode"] == "kafka" and c["events"]["bus"] == "redis"
        assert c["kafka"]["input_topics"] == ["text-messages"] and c["kafka"]["output_topic"] == "embeddings"
        assert sorted(sinks) == ["kafka", "postgres", "qdrant"], sinks
        assert c["sinks"]["postgres"]["mode"] == "embeddings" and c["postgres"]["host"] in services
        assert c["sinks"]["qdrant"]["url"] == "http://qdrant:6333" and c["search"]["backend"] == "postgres"
    elif profile == "seed003":
        assert c["ingest"]["mode"] == "kafka"
        assert c["events"]["bus"] == "redis" and c["events"]["redis_url"] == "redis://redis:6379"
        assert c["sinks"]["postgres"]["mode"] == "embeddings" and sinks == ["postgres"]
        assert c["search"]["backend"] == "postgres" and c["postgres"]["host"] in services


# ------------------------------------------------------------------ helm

def helm(*args, check=True, tmp=None):
    home = pathlib.Path(tmp or "/tmp") / "helm-home"
    env = clean_env({"HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
                     "HELM_DATA_HOME": str(home / "data")})
    r = subprocess.run([tool("helm"), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert r.returncode == 0, f"helm {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


VALUES = {
    "default": [],
    "embedded": ["-f", str(CHART / "ci/embedded-values.yaml")],
    "monitoring": ["-f", str(CHART / "ci/monitoring-values.yaml")],
}


def kubeconform(path, check=True):
    # ServiceMonitor (prometheus-operator's CRD) has no schema from a registry
    # here: it is skipped by kind, by name, and its shape is asserted below.
    # Any other kind without a schema is an error (no -ignore-missing-schemas).
    r = subprocess.run([tool("kubeconform"), "-strict", "-summary", "-skip", "ServiceMonitor",
                        "-schema-location", f"{schema_dir()}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                        str(path)], capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"kubeconform {path}: {r.returncode}\n{r.stdout}{r.stderr}"
    return r


@pytest.mark.parametrize("values", list(VALUES))
def test_helm_lint(values, tmp_path):
    r = helm("lint", "--strict", str(CHART), *VALUES[values], tmp=tmp_path)
    assert "1 chart(s) linted, 0 chart(s) failed" in r.stdout


def render(values, tmp_path):
    out = helm("template", "es", str(CHART), *VALUES[values], tmp=tmp_path).stdout
    path = tmp_path / f"{values}.yaml"
    path.write_text(out)
    docs = [d for d in yaml.safe_load_all(out) if d]
    return path, docs


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


@pytest.mark.parametrize("values", list(VALUES))
def test_helm_template(values, tmp_path, binary):
    path, docs = render(values, tmp_path)
    kinds = by_kind(docs)
    workload_kind = "StatefulSet" if values == "embedded" else "Deployment"
    expected = {"ConfigMap", "Service", workload_kind}
    if values == "monitoring":
        expected |= {"HorizontalPodAutoscaler", "ServiceMonitor"}
    assert set(kinds) == expected

    (workload,) = kinds[workload_kind]
    pod = workload["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert [p["containerPort"] for p in c["ports"] if p["name"] == "http"] == [5000]
    assert pod["securityContext"]["runAsNonRoot"] is True

    # serve reads the ConfigMap's file; the real binary accepts it.
    assert c["args"][:3] == ["serve", "--config", "/etc/embedstream/serve.yaml"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    cm_volume = next(v for v in pod["volumes"] if "configMap" in v)
    assert mounts[cm_volume["name"]] == "/etc/embedstream"
    (cm,) = kinds["ConfigMap"]
    assert cm["metadata"]["name"] == cm_volume["configMap"]["name"]
    assert "password" not in cm["data"]["serve.yaml"]
    cfg_file = tmp_path / "serve.yaml"
    cfg_file.write_text(cm["data"]["serve.yaml"])
    cfg = serve_print_config(binary, ["serve", "--config", str(cfg_file)], {})
    assert cfg["http"]["port"] == 5000
    assert cfg["store"]["enabled"] is (values != "default")
    assert mounts["data"] == cfg["store"]["dir"]

    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    main = services[workload["metadata"]["name"]]
    assert main["spec"]["selector"].items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    if workload_kind == "StatefulSet":
        (claim,) = workload["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data" and "data" not in {v["name"] for v in pod["volumes"]}
        assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
        assert services[workload["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    else:
        assert "volumeClaimTemplates" not in workload["spec"]

    env = {e["name"]: e for e in c.get("env", [])}
    if values == "monitoring":
        assert "replicas" not in workload["spec"], "the HPA owns replicas"
        assert env["EMBEDSTREAM_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "embedstream-auth"
        assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "embedstream-postgres"
        (hpa,) = kinds["HorizontalPodAutoscaler"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": workload_kind,
                                                 "name": workload["metadata"]["name"]}
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "External"
        name = metric["external"]["metric"]["name"]
        # The lag metric serve exports: the alert rules use it, and e2e_observability
        # checks every metric they use against a real serve's /metrics.
        assert name == "embedstream_consumer_lag"
        assert name in (REPO / "deploy/prometheus/alerts.yml").read_text()
        assert metric["external"]["metric"]["selector"]["matchLabels"] == {"topic": "text-messages"}
        (sm,) = kinds["ServiceMonitor"]
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["spec"]["selector"]["matchLabels"].items() <= main["metadata"]["labels"].items()
        (ep,) = sm["spec"]["endpoints"]
        assert ep["port"] in {p["name"] for p in main["spec"]["ports"]} and ep["path"] == "/metrics"
        assert ep["authorization"]["credentials"]["name"] == "embedstream-auth"
        assert main["metadata"]["labels"][sm["spec"]["jobLabel"]] == "embedstream"  # job="embedstream"
    else:
        assert workload["spec"]["replicas"] == 2
        assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in env.values())

    r = kubeconform(path)
    skipped = len(kinds.get("ServiceMonitor", []))
    assert (f"{len(docs)} resources found in 1 file - Valid: {len(docs) - skipped}, "
            f"Invalid: 0, Errors: 0, Skipped: {skipped}") in r.stdout, r.stdout


def test_helm_store_on_is_a_statefulset_by_default(tmp_path):
    """Turning the embedded store on keeps it on a volume unless told not to."""
    out = helm("template", "es", str(CHART), "--set", "store.enabled=true", tmp=tmp_path).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert "StatefulSet" in kinds and "Deployment" not in kinds, kinds
    out = helm("template", "es", str(CHART), "--set", "store.enabled=true",
               "--set", "store.persistence.enabled=false", tmp=tmp_path).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(out) if d}
    assert "Deployment" in kinds and "StatefulSet" not in kinds, kinds


def test_kubeconform_refuses_broken_manifests(tmp_path):
    path, docs = render("default", tmp_path)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["ports"][0]["containerPort"] = "five thousand"      # wrong type
    deployment["spec"]["replicaz"] = 2                             # unknown field (strict)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    r = kubeconform(bad, check=False)
    assert r.returncode != 0
    assert "containerPort" in r.stdout and "replicaz" in r.stdout, r.stdout
    # A kind with no schema is an error, not a silent skip.
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    r = kubeconform(unknown, check=False)
    assert r.returncode != 0 and "could not find schema" in r.stdout, r.stdout
