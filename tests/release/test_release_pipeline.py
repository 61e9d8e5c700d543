"""scripts/release.py: the release contract and the release pull request, end to end.

Real git repositories made here (a bare "remote" and a clone holding the project's own
deploy/k8s manifests) and a GitHub API stand-in (tests/servers/base.py) recording each request.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.base import Fault, Request, Response, TestHTTPServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release.py"
WORKLOADS = ("web.yaml", "worker.yaml", "beat.yaml", "consumers.yaml", "migrate-job.yaml")
# torghut containers per manifest in deploy/k8s (worker.yaml: trading + research workers;
# consumers.yaml: order feed, signal, whitepaper consumers and the trade-updates stream)
CONTAINERS = {"web.yaml": 1, "worker.yaml": 2, "beat.yaml": 1, "consumers.yaml": 4}
CONTAINERS["migrate-job.yaml"] = 1
DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "cd" * 32
IMAGE = "registry.example.com/torghut"
TOKEN = "ghp_release-test-token-0123456789"
MIGRATION = (
    "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n"
    "    dependencies = []\n    operations = [\n"
    '        migrations.AddField(model_name="order", name="note", '
    "field=models.TextField(null=True)),\n    ]\n"
)


class Repos:
    """A bare remote and a clone whose main branch holds deploy/k8s and one app."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.home.mkdir()
        self.remote = tmp / "remote.git"
        self.clone = tmp / "clone"
        self.git(tmp, "init", "-q", "--bare", "-b", "main", str(self.remote))
        self.git(tmp, "clone", "-q", str(self.remote), str(self.clone))
        self.git(self.clone, "checkout", "-q", "-b", "main")
        shutil.copytree(ROOT / "deploy" / "k8s", self.clone / "deploy" / "k8s")
        self.write("shop/migrations/__init__.py", "")
        self.write("shop/views.py", "VERSION = 1\n")
        self.base = self.commit("v1.1.0")
        self.git(self.clone, "tag", "v1.1.0")
        self.git(self.clone, "push", "-q", "origin", "main", "v1.1.0")

    @property
    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": "release",
            "GIT_AUTHOR_EMAIL": "release@example.org",
            "GIT_COMMITTER_NAME": "release",
            "GIT_COMMITTER_EMAIL": "release@example.org",
            "HOME": str(self.home),
            "PATH": os.environ["PATH"],
        }

    def git(self, where: Path, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(where), *args],
            check=True,
            capture_output=True,
            text=True,
            env=self.env,
        ).stdout.strip()

    def write(self, relative: str, text: str) -> None:
        path = self.clone / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self, message: str) -> str:
        self.git(self.clone, "add", "-A")
        self.git(self.clone, "commit", "-q", "-m", message)
        return self.git(self.clone, "rev-parse", "HEAD")

    def remote_branches(self) -> list[str]:
        out = self.git(self.remote, "for-each-ref", "--format=%(refname)", "refs/heads")
        return out.splitlines()


class GitHub(TestHTTPServer):
    """POST /repos/{owner}/{repo}/pulls, POST .../issues/{n}/labels and POST /graphql."""

    def __init__(self) -> None:
        super().__init__()
        self.route("POST", r"/repos/acme/torghut/pulls", self.pulls)
        self.route("POST", r"/repos/acme/torghut/issues/(\d+)/labels", self.labels)
        self.route("POST", r"/graphql", self.graphql)

    def pulls(self, request: Request) -> Response:
        body = {"number": 42, "node_id": "PR_kwDOtorghut42", "draft": request.json()["draft"]}
        body["html_url"] = "https://github.example/acme/torghut/pull/42"
        return Response(201, body)

    def labels(self, request: Request) -> Response:
        return Response(200, [{"name": name} for name in request.json()["labels"]])

    def graphql(self, request: Request) -> Response:
        pr = {"number": 42, "autoMergeRequest": {"mergeMethod": "SQUASH"}}
        return Response(200, {"data": {"enablePullRequestAutoMerge": {"pullRequest": pr}}})


@pytest.fixture
def repos(tmp_path) -> Repos:
    return Repos(tmp_path)


@pytest.fixture
def github():
    server = GitHub().start()
    yield server
    server.stop()


def release(repos: Repos, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = repos.env | ({"GITHUB_TOKEN": token} if token else {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=repos.clone.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def contract(repos: Repos, *extra: str, version: str = "1.2.0", digest: str = DIGEST) -> Any:
    out = repos.clone.parent / "contract.json"
    args = ["--image", IMAGE, "--digest", digest, "--version", version, *extra]
    result = release(repos, "contract", "--repo", str(repos.clone), "--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def promote(repos: Repos, github: GitHub, token: str | None = TOKEN):
    return release(
        repos,
        "promote",
        "--contract",
        str(repos.clone.parent / "contract.json"),
        "--repo",
        str(repos.clone),
        "--github-repo",
        "acme/torghut",
        "--api-url",
        github.url,
        token=token,
    )


def changed_lines(repos: Repos, branch: str) -> dict[str, tuple[list[str], list[str]]]:
    """{manifest: (removed lines, added lines)} of the release commit, in the remote."""
    out = repos.git(repos.remote, "diff", "--unified=0", f"{branch}^", branch)
    result: dict[str, tuple[list[str], list[str]]] = {}
    for line in out.splitlines():
        if line.startswith("+++ b/"):
            current = result.setdefault(line[len("+++ b/deploy/k8s/") :], ([], []))
        elif line.startswith("-") and not line.startswith("---"):
            current[0].append(line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            current[1].append(line[1:])
    return result


def expected_diff(old: str, new: str, job: str) -> dict[str, tuple[list[str], list[str]]]:
    diff = {
        name: ([f"          image: {old}"] * n, [f"          image: {new}"] * n)
        for name, n in CONTAINERS.items()
    }
    diff["migrate-job.yaml"] = (
        ["  name: torghut-migrate", f"          image: {old}"],
        [f"  name: {job}", f"          image: {new}"],
    )
    return diff


# -- contract -----------------------------------------------------------------------------------


def test_contract_without_migration_changes(repos):
    repos.write("shop/views.py", "VERSION = 2\n")
    head = repos.commit("views")
    assert contract(repos) == {
        "image": IMAGE,
        "digest": DIGEST,
        "version": "1.2.0",
        "commit": head,
        "image_ref": f"{IMAGE}:1.2.0@{DIGEST}",
        "previous_release": "v1.1.0",
        "previous_commit": repos.base,
        "migrations_changed": False,
        "migrations": [],
        "backwards_compatible": True,
    }


def test_contract_with_a_migration_since_the_previous_release(repos):
    repos.write("shop/migrations/0002_note.py", MIGRATION)
    head = repos.commit("migration")
    repos.write("shop/views.py", "VERSION = 3\n")
    later = repos.commit("views")
    result = contract(repos, "--commit", head)
    assert (result["commit"], result["previous_release"]) == (head, "v1.1.0")
    assert result["migrations_changed"] is True
    assert result["migrations"] == ["shop/migrations/0002_note.py"]
    # an explicit previous release after the migration: nothing changed since
    repos.git(repos.clone, "tag", "v1.2.0", head)
    assert contract(repos, "--commit", later, "--version", "1.3.0")["migrations"] == []


# -- promote ------------------------------------------------------------------------------------


def test_promote_without_migrations_requests_auto_merge(repos, github):
    repos.write("shop/views.py", "VERSION = 2\n")
    head = repos.commit("views")
    contract(repos)
    result = promote(repos, github)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "release pull request: https://github.example/acme/torghut/pull/42\n"
    assert TOKEN not in result.stdout + result.stderr
    assert repos.remote_branches() == ["refs/heads/main", "refs/heads/release/1.2.0"]
    assert repos.git(repos.remote, "rev-parse", "release/1.2.0^") == head
    new = f"{IMAGE}:1.2.0@{DIGEST}"
    assert changed_lines(repos, "release/1.2.0") == expected_diff(
        "torghut", new, "torghut-migrate-1.2.0"
    )
    # the user's checkout is untouched
    assert repos.git(repos.clone, "status", "--porcelain") == ""
    assert repos.git(repos.clone, "worktree", "list").count("\n") == 0
    pulls, graphql = github.requests
    assert (pulls.method, pulls.path, graphql.path) == (
        "POST",
        "/repos/acme/torghut/pulls",
        "/graphql",
    )
    assert pulls.headers["authorization"] == f"Bearer {TOKEN}"
    assert pulls.headers["accept"] == "application/vnd.github+json"
    sent = pulls.json()
    assert {k: sent[k] for k in ("title", "head", "base", "draft")} == {
        "title": "release: torghut 1.2.0",
        "head": "release/1.2.0",
        "base": "main",
        "draft": False,
    }
    assert sent["body"].splitlines()[2:] == ["Migrations changed: none.", "Auto-merge requested."]
    mutation = graphql.json()
    assert mutation["variables"] == {"id": "PR_kwDOtorghut42"}
    assert (
        "enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH})"
        in (mutation["query"])
    )


def test_promote_with_migrations_opens_a_labelled_draft(repos, github):
    repos.write("shop/migrations/0002_note.py", MIGRATION)
    repos.commit("migration")
    contract(repos, version="1.2.0-rc.1")
    result = promote(repos, github)
    assert result.returncode == 0, result.stderr
    pulls, labels = github.requests
    assert pulls.json()["draft"] is True
    assert pulls.json()["head"] == "release/1.2.0-rc.1"
    assert pulls.json()["body"].splitlines()[2:] == [
        "Migrations changed: shop/migrations/0002_note.py.",
        "Run the migration Job and approve by hand.",
    ]
    assert (labels.path, labels.json()) == (
        "/repos/acme/torghut/issues/42/labels",
        {"labels": ["do-not-automerge"]},
    )
    assert not [r for r in github.requests if r.path == "/graphql"]


def test_a_second_release_replaces_the_previous_digest_everywhere(repos, github):
    contract(repos, version="1.1.1", digest=OLD_DIGEST)
    assert promote(repos, github).returncode == 0
    repos.git(repos.clone, "fetch", "-q", "origin")
    repos.git(repos.clone, "merge", "-q", "--ff-only", "origin/release/1.1.1")
    repos.git(repos.clone, "push", "-q", "origin", "main")
    contract(repos)
    assert promote(repos, github).returncode == 0
    old, new = f"{IMAGE}:1.1.1@{OLD_DIGEST}", f"{IMAGE}:1.2.0@{DIGEST}"
    diff = changed_lines(repos, "release/1.2.0")
    expected = expected_diff(old, new, "torghut-migrate-1.2.0")
    expected["migrate-job.yaml"] = (
        ["  name: torghut-migrate-1.1.1", f"          image: {old}"],
        ["  name: torghut-migrate-1.2.0", f"          image: {new}"],
    )
    assert diff == expected
    images, jobs = [], []
    for name in [*WORKLOADS, "kustomization.yaml"]:
        text = repos.git(repos.remote, "show", f"release/1.2.0:deploy/k8s/{name}")
        assert OLD_DIGEST not in text
        for doc in yaml.safe_load_all(text):
            if doc["kind"] == "Job":
                jobs.append(doc["metadata"]["name"])
            if "template" in doc.get("spec", {}):
                images += [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
    # what the cluster would run, read as Kubernetes reads it
    assert (images, jobs) == ([new] * sum(CONTAINERS.values()), ["torghut-migrate-1.2.0"])


# -- refused inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option,value",
    [
        ("--version", "1.2.0; touch pwned"),
        ("--version", "1.2.0$(touch pwned)"),
        ("--version", "--upload-pack=touch pwned"),
        ("--version", "V1.2.0"),
        ("--digest", "sha256:" + "ab" * 31),
        ("--digest", "sha256:" + "AB" * 32),
        ("--digest", "md5:" + "ab" * 32),
        ("--image", f"{IMAGE}:latest"),
        ("--image", "registry.example.com/torghut;touch pwned"),
    ],
)
def test_contract_refuses_an_invalid_tag_digest_or_image(repos, option, value):
    out = repos.clone.parent / "contract.json"
    args = {"--image": IMAGE, "--digest": DIGEST, "--version": "1.2.0"} | {option: value}
    flat = [item for pair in args.items() for item in pair]
    result = release(repos, "contract", "--repo", str(repos.clone), "--out", str(out), *flat)
    assert result.returncode == 1
    assert result.stderr.startswith("release: error: not a valid ")
    assert not out.exists()
    assert not list(repos.clone.parent.glob("pwned")) and not (repos.clone / "pwned").exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("version", "1.2.0 && touch pwned"),
        ("digest", "sha256:" + "ab" * 32 + "\n"),
        ("image", "registry.example.com/torghut:1.2.0"),
        ("commit", "HEAD"),
        ("migrations_changed", "false"),
    ],
)
def test_promote_refuses_a_tampered_contract_before_anything_is_written(
    repos, github, field, value
):
    path = repos.clone.parent / "contract.json"
    data = contract(repos) | {field: value}
    path.write_text(json.dumps(data))
    result = promote(repos, github)
    assert result.returncode == 1
    assert result.stderr.startswith("release: error: ")
    assert repos.remote_branches() == ["refs/heads/main"]
    assert "release/" not in repos.git(repos.clone, "branch", "--list")
    assert github.requests == []


def test_promote_refuses_manifests_that_disagree_on_the_image(repos, github):
    web = repos.clone / "deploy" / "k8s" / "web.yaml"
    web.write_text(web.read_text().replace("image: torghut", f"image: {IMAGE}@{OLD_DIGEST}"))
    repos.commit("web drifted")
    contract(repos)
    result = promote(repos, github)
    assert result.returncode == 1
    assert "the manifests do not share one image" in result.stderr
    assert repos.remote_branches() == ["refs/heads/main"]
    assert github.requests == []


def test_promote_without_a_token_does_nothing(repos, github):
    contract(repos)
    result = promote(repos, github, token=None)
    assert (result.returncode, result.stderr) == (1, "release: error: GITHUB_TOKEN is not set\n")
    assert repos.remote_branches() == ["refs/heads/main"]
    assert github.requests == []


def test_a_github_refusal_is_reported_without_the_token(repos, github):
    github.inject(Fault("POST", r"/repos/acme/torghut/pulls", status=422, body={"message": "nope"}))
    contract(repos)
    result = promote(repos, github)
    assert result.returncode == 1
    assert result.stderr == (
        f"release: error: GitHub answered 422 to POST {github.url}/repos/acme/torghut/pulls: "
        '{"message": "nope"}\n'
    )
    assert TOKEN not in result.stdout + result.stderr
    # the branch was pushed: re-running after the fix only opens the PR
    assert repos.remote_branches() == ["refs/heads/main", "refs/heads/release/1.2.0"]


def test_an_auto_merge_refused_by_graphql_fails_the_release(repos, github):
    # GraphQL answers 200 with "errors" when the repository does not allow auto-merge
    refusal = {
        "errors": [{"message": "Pull request Auto merge is not allowed for this repository"}]
    }
    github.inject(Fault("POST", r"/graphql", status=200, body=refusal))
    contract(repos)
    result = promote(repos, github)
    assert result.returncode == 1
    assert result.stderr == (
        f"release: error: GitHub GraphQL errors at {github.url}/graphql: "
        "[{'message': 'Pull request Auto merge is not allowed for this repository'}]\n"
    )
    assert [r.path for r in github.requests] == ["/repos/acme/torghut/pulls", "/graphql"]


def test_make_release_passes_values_through_the_environment_not_the_shell(tmp_path):
    pwned = tmp_path / "pwned"
    hostile = f'1"; touch {pwned}; echo "'
    result = subprocess.run(
        ["make", "--no-print-directory", "release", f"VERSION={hostile}", f"DIGEST={DIGEST}"]
        + ["GITHUB_REPO=acme/torghut", f"IMAGE={IMAGE}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"release: error: not a valid version (lowercase tag): {hostile!r}" in result.stderr
    assert not pwned.exists()
    assert not (ROOT / "release-contract.json").exists()
