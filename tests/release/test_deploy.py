"""The image definition, its entry point and the example Kubernetes manifests.

There is no Docker daemon here, so the Dockerfile is checked as text (stages, user, entry point,
what .dockerignore keeps) and its entry point is run for real: every role resolves to a program
on PATH and an existing management command or app, `manage` and `migrate` run, and `web` serves
/healthz through gunicorn. The manifests must parse, name only variables the settings package reads,
run each role where the README says (one beat, one trade-updates stream), probe /healthz and
/db-check with a Host the site accepts, and pass `check --deploy` with their own configuration.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import free_port, manage

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
K8S = ROOT / "deploy" / "k8s"
VENV_BIN = str(Path(sys.executable).parent)
ROLES = {
    "web": "gunicorn torghut_site.wsgi:application",
    "worker": "celery -A torghut_site worker",
    "beat": "celery -A torghut_site beat",
    "migrate": "python manage.py migrate --noinput",
    "orderfeed-consumer": "python manage.py run_orderfeed_consumer",
    "signal-consumer": "python manage.py run_signal_consumer",
    "whitepaper-consumer": "python manage.py run_whitepaper_consumer",
    "trade-updates-stream": "python manage.py run_trade_updates_stream",
}


# -- helpers ----------------------------------------------------------------------------------


def entrypoint(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRADING_", "DB_", "APP_", "DJANGO_", "PROMETHEUS_"))
    }
    base.update({"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "TORGHUT_ENV_FILE": "/nonexistent"})
    base.update(env or {})
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    rows = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rows.append((keyword.upper(), rest.strip()))
    return rows


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def workloads() -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def by_kind(kind: str) -> dict[str, Any]:
    [doc] = [d for d in manifests() if d["kind"] == kind]
    return doc


def settings_env_names() -> set[str]:
    """Every variable the settings package torghut_site/settings/ reads (env.<reader>("NAME",
    "ALIAS", ...), a helper reading f"{prefix}_SUFFIX" called as helper("PREFIX", ...), such as
    kafka_security("PREFIX") and kafka_consumer("PREFIX", ...), and os.environ)."""
    trees = [
        ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "torghut_site" / "settings").glob("*.py"))
    ]
    suffixes: dict[str, set[str]] = {}  # helper -> the suffixes its f"{prefix}..." reads name
    for tree in trees:
        for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.JoinedStr) and len(node.values) == 2:
                    head, tail = node.values
                    if isinstance(head, ast.FormattedValue) and isinstance(tail, ast.Constant):
                        suffixes.setdefault(function.name, set()).add(str(tail.value))
    names: set[str] = set()
    for node in (n for tree in trees for n in ast.walk(tree)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        strings: list[str] = [
            a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if receiver in ("env", "os.environ"):
            names.update(strings)
        elif isinstance(func, ast.Name) and func.id in suffixes and strings:
            names.update(f"{strings[0]}{suffix}" for suffix in suffixes[func.id])
    return {n for n in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", n)}


def entrypoint_env_names() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", ENTRYPOINT.read_text(encoding="utf-8")))


def manifest_env() -> dict[str, str]:
    """What a pod sees from the ConfigMap and the example Secret."""
    return {**by_kind("ConfigMap")["data"], **by_kind("Secret")["stringData"]}


# -- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_slim_and_runs_as_an_unprivileged_user():
    rows = dockerfile_instructions()
    stages = [rest for keyword, rest in rows if keyword == "FROM"]
    assert len(stages) >= 2, stages
    args: dict[str, str] = {}
    for keyword, rest in rows:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    bases = {re.sub(r"\$\{(\w+)\}", lambda m: args[str(m.group(1))], s.split()[0]) for s in stages}
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases), bases
    users = [rest for keyword, rest in rows if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("0", "root")
    run_lines = " ".join(rest for keyword, rest in rows if keyword == "RUN")
    assert re.search(r"pip install .*-r /tmp/requirements/base\.txt", run_lines)
    assert "manage.py collectstatic --noinput" in run_lines
    copies = [rest for keyword, rest in rows if keyword == "COPY"]
    assert "requirements/base.txt /tmp/requirements/base.txt" in copies


def test_dockerfile_entry_point_and_default_role():
    rows = dict(dockerfile_instructions())  # the last one of each keyword wins, as in Docker
    assert json.loads(rows["ENTRYPOINT"]) == ["/app/deploy/entrypoint.sh"]
    [role] = json.loads(rows["CMD"])
    assert role in ROLES
    assert rows["EXPOSE"] == "8181"
    assert rows["WORKDIR"] == "/app"


def test_dockerignore_keeps_what_the_image_needs_and_drops_the_rest():
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!").replace("**/", "")
            parts = path.split("/")
            hit = any(
                fnmatch.fnmatch("/".join(parts[i : j + 1]), pattern)
                or fnmatch.fnmatch(part, pattern)
                for i in range(len(parts))
                for j, part in enumerate(parts)
                if j >= i
            )
            if hit:
                verdict = not negate
        return verdict

    needed = [
        "manage.py",
        "deploy/entrypoint.sh",
        "requirements/base.txt",
        "torghut_site/settings/__init__.py",
        "trading/sample_data/signals-sample.csv",
        "config/strategies.sample.yaml",
        "autonomy/policies",
    ]
    assert [p for p in needed if ignored(p)] == []
    dropped = [".git", ".venv", "var", ".env", "tests/security/conftest.py", "trading/tests/x.py"]
    assert [p for p in dropped if not ignored(p)] == []


# -- entry point ------------------------------------------------------------------------------


def test_entrypoint_lists_its_roles():
    result = entrypoint("roles")
    assert result.returncode == 0
    assert set(result.stdout.split()) == {*ROLES, "manage"}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_entrypoint_role_resolves_to_a_real_program(role):
    result = entrypoint(role, "--check")
    assert result.returncode == 0, result.stderr
    assert ROLES[role] in result.stdout


def test_entrypoint_targets_exist():
    """What the roles name: management commands, the WSGI callable, the Celery app."""
    from celery import Celery
    from django.core.management import get_commands

    commands = get_commands()
    for command in ROLES.values():
        words = shlex.split(command)
        if words[:2] == ["python", "manage.py"]:
            assert words[2] in commands, words[2]
    from torghut_site import celery, wsgi

    assert callable(wsgi.application)
    assert isinstance(celery.app, Celery)


def test_entrypoint_refuses_an_unknown_role():
    result = entrypoint("webserver")
    assert result.returncode == 64
    assert "unknown role: webserver" in result.stderr


def test_entrypoint_execs_manage_and_resets_the_metrics_directory(tmp_path):
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"stale")
    result = entrypoint(
        "manage",
        "check",
        env={"TORGHUT_VAR_DIR": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    # the previous run's samples are gone (the new process writes its own)
    assert not (metrics / "counter_123.db").exists()


def test_entrypoint_migrate_then_web_serves_the_probes_and_static_files(tmp_path):
    """The image's build step (collectstatic) and a release: migrate, then web."""
    env = {
        "TORGHUT_VAR_DIR": str(tmp_path),
        "DB_DSN": f"sqlite:///{tmp_path / 'release.sqlite3'}",
        "WEB_CONCURRENCY": "1",
        "PORT": str(free_port()),
    }
    collected = entrypoint("manage", "collectstatic", "--noinput", env=env, timeout=180)
    assert collected.returncode == 0, collected.stderr
    migrated = entrypoint("migrate", env=env, timeout=180)
    assert migrated.returncode == 0, migrated.stderr
    assert "Applying trading.0001_initial... OK" in migrated.stdout
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRADING_", "DB_", "APP_", "DJANGO_", "PROMETHEUS_"))
    }
    log = tmp_path / "web.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            ["sh", str(ENTRYPOINT), "web"],
            env={**base, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                healthz = requests.get(f"{url}/healthz", timeout=10)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert healthz.json() == {"status": "ok", "service": "torghut"}
        db_check = requests.get(f"{url}/db-check", timeout=5)
        assert (db_check.status_code, db_check.json()["schema_current"]) == (200, True)
        # WhiteNoise serves the collected files (manifest storage, as in the image)
        css = requests.get(f"{url}/static/admin/css/base.css", timeout=5)
        assert (css.status_code, css.headers["Content-Type"]) == (200, 'text/css; charset="utf-8"')
    finally:
        proc.send_signal(signal.SIGTERM)  # gunicorn is PID of the exec'd shell: graceful stop
        assert proc.wait(timeout=30) == 0


# -- Kubernetes manifests ----------------------------------------------------------------------


def test_manifests_parse_and_the_kustomization_lists_them():
    for doc in manifests():
        assert {"apiVersion", "kind"} <= set(doc), doc
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"].startswith("torghut-")
    kustomization = by_kind("Kustomization")
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    [image] = kustomization["images"]
    used = {c["image"] for w in workloads() for c in containers(w)}
    # the template names kustomize's image; a release (scripts/release.py promote) pins one
    # IMAGE:VERSION@sha256:<digest> reference in every workload instead
    pinned = len(used) == 1 and re.fullmatch(
        r"[^\s:@]+(:\d+)?[^\s:@]*:[\w.-]+@sha256:[0-9a-f]{64}", next(iter(used), "")
    )
    assert used == {image["name"]} or pinned, used


def test_every_variable_in_the_manifests_is_read_by_settings():
    known = settings_env_names() | entrypoint_env_names()
    named = set(manifest_env())
    for workload in workloads():
        for container in containers(workload):
            named.update(item["name"] for item in container.get("env", []))
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                assert ref["name"] in ("torghut-config", "torghut-secrets")
    assert named - known == set()
    # the scan of the settings package is not vacuous
    assert {"DB_DSN", "APCA_API_SECRET_KEY", "WHITEPAPER_KAFKA_SASL_PASSWORD"} <= known


def test_secrets_are_in_the_secret_not_the_config_map():
    config = by_kind("ConfigMap")["data"]
    secret_like = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY|KEY_ID|ACCESS_KEY|DSN|_URL$")
    leaked = [name for name in config if secret_like.search(name) and not name.endswith("BASE_URL")]
    # URLs without credentials are configuration
    assert set(leaked) <= {"TRADING_FEATURE_FLAGS_URL"}, leaked
    for value in by_kind("Secret")["stringData"].values():
        assert "change-me" in value  # placeholders only, never a real credential


def test_every_role_runs_where_the_readme_says():
    deployed: dict[str, dict[str, Any]] = {}
    for workload in workloads():
        for container in containers(workload):
            [role] = container["args"]
            assert role in ROLES, role
            deployed[role] = workload
            assert {"configMapRef": {"name": "torghut-config"}} in container["envFrom"]
            assert {"secretRef": {"name": "torghut-secrets"}} in container["envFrom"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
    assert set(deployed) == set(ROLES)
    for singleton in ("beat", "trade-updates-stream"):
        spec = deployed[singleton]["spec"]
        assert (spec["replicas"], spec["strategy"]["type"]) == (1, "Recreate"), singleton
    assert deployed["migrate"]["kind"] == "Job"
    assert deployed["migrate"]["spec"]["backoffLimit"] == 0
    orderfeed = deployed["orderfeed-consumer"]
    assert orderfeed["kind"] == "StatefulSet"  # stable names for static group membership
    [container] = containers(orderfeed)
    assert {
        "name": "TORGHUT_INSTANCE_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    } in container["env"]


def test_web_probes_use_healthz_and_db_check_with_an_allowed_host():
    [web] = [w for w in workloads() if containers(w)[0]["args"] == ["web"]]
    [container] = containers(web)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/db-check"
    hosts = by_kind("ConfigMap")["data"]["ALLOWED_HOSTS"].split(",")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in hosts
    [port] = container["ports"]
    assert port["containerPort"] == 8181


@pytest.mark.django_db
def test_the_probes_get_200_from_a_production_site(client, settings):
    """With the manifest's ALLOWED_HOSTS and the production HTTPS redirect, a kubelet probe
    (plain HTTP, the manifest's Host header) is answered, not redirected or refused."""
    [web] = [w for w in workloads() if containers(w)[0]["args"] == ["web"]]
    [container] = containers(web)
    settings.ALLOWED_HOSTS = by_kind("ConfigMap")["data"]["ALLOWED_HOSTS"].split(",")
    settings.SECURE_SSL_REDIRECT = True
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        host = get["httpHeaders"][0]["value"]
        response = client.get(get["path"], HTTP_HOST=host)
        assert response.status_code == 200, (probe, response.status_code)
    assert client.get("/trading/status", HTTP_HOST=host).status_code == 301  # the rest: HTTPS


def test_check_deploy_is_clean_with_the_manifest_configuration(tmp_path):
    env = {
        **manifest_env(),
        "SECRET_KEY": "k" * 20 + "-deploy-check-secret-key-0123456789-abcdefghijklmn",
        "TORGHUT_VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),  # the entry point creates it in a pod
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_example_secret_key_is_refused_in_production(tmp_path):
    env = {**manifest_env(), "TORGHUT_VAR_DIR": str(tmp_path)}
    result = manage("check", env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "SECRET_KEY must be at least 50 characters when APP_ENV=prod" in result.stderr
