#!/usr/bin/env python3
"""The release pipeline after the image is built and pushed: contract, then release pull request.

    scripts/release.py contract --image REG/torghut --digest sha256:HEX --version 1.4.0
        [--commit REV] [--previous REV] [--repo PATH] [--out release-contract.json]
    scripts/release.py promote --contract release-contract.json --github-repo OWNER/NAME
        [--repo PATH] [--remote origin] [--base main] [--api-url URL] [--graphql-url URL]
        [--token-env GITHUB_TOKEN]

`contract` writes the release contract: image, digest, commit, version, the previous release and
whether migrations changed between the two (scripts/release_check.py reads them). `promote` pins
`IMAGE:VERSION@DIGEST` in every workload manifest of deploy/k8s (web, worker, beat, consumers,
the migration Job, whose name becomes torghut-migrate-VERSION) in one commit on the branch
release/VERSION, pushes it, and opens a pull request through the GitHub REST API
(POST /repos/{owner}/{repo}/pulls). Migrations changed: the PR is a draft labelled
do-not-automerge (POST /repos/{owner}/{repo}/issues/{number}/labels). Otherwise auto-merge is
requested with GitHub's GraphQL mutation enablePullRequestAutoMerge on the PR's node_id (GitHub
has no REST call for it). The token is read from the environment and never printed.

Every input is checked against a strict pattern before anything is written; git runs with
argument lists, never through a shell. Exit 0 = done, 1 = refused or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from release_check import MIGRATION_PATH, CheckError, check, git, resolve  # noqa: E402

IMAGE = re.compile(
    r"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# a Docker tag that is also a valid part of a Kubernetes name (the migration Job's)
VERSION = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,40}[a-z0-9])?$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,100}$")
WORKLOADS = ("web.yaml", "worker.yaml", "beat.yaml", "consumers.yaml", "migrate-job.yaml")
K8S = "deploy/k8s"
IMAGE_LINE = re.compile(r"^(\s*image:\s*)(\S+)\s*$", re.M)
JOB_NAME = re.compile(r"^(  name: )torghut-migrate(?:-[a-z0-9.-]+)?$", re.M)
NO_AUTOMERGE = "do-not-automerge"
AUTOMERGE = """mutation($id: ID!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH}) {
    pullRequest { number autoMergeRequest { mergeMethod } }
  }
}"""


class ReleaseError(Exception):
    """Refused input or a failed step (exit 1)."""


def require(pattern: re.Pattern[str], value: Any, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ReleaseError(f"not a valid {what}: {value!r}")
    return value


def validate(contract: dict[str, Any]) -> dict[str, Any]:
    require(IMAGE, contract.get("image"), "image name (no tag, no digest)")
    require(DIGEST, contract.get("digest"), "digest (sha256:<64 hex>)")
    require(VERSION, contract.get("version"), "version (lowercase tag)")
    require(re.compile(r"^[0-9a-f]{40}$"), contract.get("commit"), "commit")
    if not isinstance(contract.get("migrations_changed"), bool):
        raise ReleaseError("migrations_changed must be true or false")
    return contract


def image_ref(contract: dict[str, Any]) -> str:
    return f"{contract['image']}:{contract['version']}@{contract['digest']}"


# -- contract -------------------------------------------------------------------------------------


def previous_release(repo: Path, commit: str) -> str | None:
    """The newest tag reachable from the commit's parent, or None on a first release."""
    try:
        return git(repo, "describe", "--tags", "--abbrev=0", f"{commit}^").strip() or None
    except CheckError:
        return None


def build_contract(repo: Path, args: argparse.Namespace) -> dict[str, Any]:
    require(IMAGE, args.image, "image name (no tag, no digest)")
    require(DIGEST, args.digest, "digest (sha256:<64 hex>)")
    require(VERSION, args.version, "version (lowercase tag)")
    commit = resolve(repo, args.commit)
    previous = args.previous or previous_release(repo, commit)
    if previous is None:
        # first release: every migration in the tree is new
        previous_commit = None
        tree = git(repo, "ls-tree", "-r", "--name-only", commit).splitlines()
        migrations = sorted(p for p in tree if MIGRATION_PATH.search(p))
        compatible = True
    else:
        previous_commit = resolve(repo, previous)
        verdict = check(repo, previous_commit, commit)
        migrations = [m["path"] for m in verdict["migrations"]]
        compatible = verdict["backwards_compatible"]
    return {
        "image": args.image,
        "digest": args.digest,
        "version": args.version,
        "commit": commit,
        "image_ref": f"{args.image}:{args.version}@{args.digest}",
        "previous_release": previous,
        "previous_commit": previous_commit,
        "migrations_changed": bool(migrations),
        "migrations": migrations,
        "backwards_compatible": compatible,
    }


# -- manifests ------------------------------------------------------------------------------------


def pin_manifests(root: Path, contract: dict[str, Any]) -> dict[str, str]:
    """Every workload manifest's image line to the new reference: all or none."""
    new_ref = image_ref(contract)
    texts = {name: (root / K8S / name).read_text(encoding="utf-8") for name in WORKLOADS}
    old_refs = {ref for text in texts.values() for _, ref in IMAGE_LINE.findall(text)}
    if len(old_refs) != 1 or any(not IMAGE_LINE.search(t) for t in texts.values()):
        raise ReleaseError(f"the manifests do not share one image: {sorted(old_refs)}")
    [old_ref] = old_refs
    if old_ref == new_ref:
        raise ReleaseError(f"the manifests already run {new_ref}")
    edited = {}
    for name, text in texts.items():
        text = IMAGE_LINE.sub(lambda m: m.group(1) + new_ref, text)
        if name == "migrate-job.yaml":
            text = JOB_NAME.sub(
                lambda m: f"{m.group(1)}torghut-migrate-{contract['version']}", text
            )
        edited[name] = text
    old_digest = old_ref.partition("@")[2]
    for name, text in edited.items():
        refs = {ref for _, ref in IMAGE_LINE.findall(text)}
        if refs != {new_ref} or (old_digest and old_digest in text):
            raise ReleaseError(f"{name} still refers to the old image after the edit")
    for name, text in edited.items():
        (root / K8S / name).write_text(text, encoding="utf-8")
    return {"old": old_ref, "new": new_ref}


# -- GitHub ---------------------------------------------------------------------------------------


def github(url: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "torghut-release",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise ReleaseError(f"GitHub answered {exc.code} to POST {url}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReleaseError(f"GitHub unreachable at {url}: {exc}") from None
    # REST answers an object or a list (labels); GraphQL reports failures in "errors" with a 200
    body: dict[str, Any] = answer if isinstance(answer, dict) else {"items": answer}
    if body.get("errors"):
        raise ReleaseError(f"GitHub GraphQL errors at {url}: {body['errors']}")
    return body


def open_pull_request(args: argparse.Namespace, contract: dict[str, Any], branch: str) -> str:
    token = os.environ.get(args.token_env, "")
    api = args.api_url.rstrip("/")
    pulls = f"{api}/repos/{args.github_repo}/pulls"
    changed = contract["migrations_changed"]
    body = "\n".join(
        [
            f"Image `{image_ref(contract)}` from commit {contract['commit']}.",
            f"Previous release: {contract['previous_release'] or 'none'}.",
            "Migrations changed: " + (", ".join(contract["migrations"]) or "none") + ".",
            "Run the migration Job and approve by hand." if changed else "Auto-merge requested.",
        ]
    )
    title = f"release: torghut {contract['version']}"
    pr = github(
        pulls,
        token,
        {"title": title, "head": branch, "base": args.base, "body": body, "draft": changed},
    )
    number = pr["number"]
    if changed:
        labels = f"{api}/repos/{args.github_repo}/issues/{number}/labels"
        github(labels, token, {"labels": [NO_AUTOMERGE]})
    else:
        graphql = args.graphql_url or f"{api}/graphql"
        github(graphql, token, {"query": AUTOMERGE, "variables": {"id": pr["node_id"]}})
    return str(pr.get("html_url") or number)


# -- promote --------------------------------------------------------------------------------------


def promote(args: argparse.Namespace) -> str:
    contract = validate(json.loads(Path(args.contract).read_text(encoding="utf-8")))
    require(GITHUB_REPO, args.github_repo, "GitHub repository (owner/name)")
    require(BRANCH, args.base, "base branch")
    require(BRANCH, args.remote, "remote name")
    if not os.environ.get(args.token_env):
        raise ReleaseError(f"{args.token_env} is not set")
    repo = Path(args.repo).resolve()
    resolve(repo, contract["commit"])
    branch = f"release/{contract['version']}"
    with tempfile.TemporaryDirectory(prefix="torghut-release-") as tmp:
        work = Path(tmp) / "tree"
        git(repo, "worktree", "add", "-q", "-b", branch, str(work), contract["commit"])
        try:
            refs = pin_manifests(work, contract)
            git(work, "add", "--", *(f"{K8S}/{name}" for name in WORKLOADS))
            message = f"release: torghut {contract['version']}\n\n{refs['old']} -> {refs['new']}"
            git(work, "commit", "-q", "-m", message)
            git(work, "push", "-q", args.remote, f"refs/heads/{branch}:refs/heads/{branch}")
        finally:
            git(repo, "worktree", "remove", "--force", str(work))
    return open_pull_request(args, contract, branch)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(description="Release contract and release pull request.")
    sub = root.add_subparsers(dest="command", required=True)
    contract = sub.add_parser("contract", help="write the release contract JSON")
    contract.add_argument("--image", required=True, help="registry/name, no tag")
    contract.add_argument("--digest", required=True, help="sha256:<64 hex> of the pushed image")
    contract.add_argument("--version", required=True)
    contract.add_argument("--commit", default="HEAD")
    contract.add_argument("--previous", help="the release in production (default: newest tag)")
    contract.add_argument("--repo", default=".")
    contract.add_argument("--out", default="release-contract.json")
    prom = sub.add_parser("promote", help="release branch, push, pull request")
    prom.add_argument("--contract", default="release-contract.json")
    prom.add_argument("--github-repo", required=True, help="owner/name")
    prom.add_argument("--repo", default=".")
    prom.add_argument("--remote", default="origin")
    prom.add_argument("--base", default="main")
    prom.add_argument("--api-url", default="https://api.github.com")
    prom.add_argument("--graphql-url", help="default: <api-url>/graphql")
    prom.add_argument("--token-env", default="GITHUB_TOKEN")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "contract":
            result = build_contract(Path(args.repo).resolve(), args)
            Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
            print(f"release contract: {args.out}")
        else:
            print(f"release pull request: {promote(args)}")
    except (ReleaseError, CheckError, OSError, ValueError, KeyError) as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
