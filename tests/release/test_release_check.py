"""scripts/release_check.py against real git repositories made here, one commit per scenario."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release_check.py"

INITIAL = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("symbol", models.CharField(max_length=32)),
                ("note", models.TextField(null=True)),
                ("qty", models.DecimalField(max_digits=24, decimal_places=8)),
            ],
        ),
    ]
"""


def migration(*operations: str, preamble: str = "") -> str:
    body = "\n".join(f"        {op.strip()}," for op in operations)
    return (
        "from django.db import migrations, models\n"
        + dedent(preamble)
        + "\n\nclass Migration(migrations.Migration):\n"
        + '    dependencies = [("shop", "0001_initial")]\n'
        + f"    operations = [\n{body}\n    ]\n"
    )


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.write("shop/__init__.py", "")
        self.write("shop/views.py", "def index():\n    return 'v1'\n")
        self.write("shop/migrations/__init__.py", "")
        self.write("shop/migrations/0001_initial.py", INITIAL)
        self.base = self.commit("initial")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            text=True,
            env={
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.org",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.org",
                "HOME": str(self.path),
                "PATH": "/usr/bin:/bin:/usr/local/bin",
            },
        ).stdout.strip()

    def write(self, relative: str, text: str) -> None:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def remove(self, relative: str) -> None:
        self.git("rm", "-q", relative)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path / "repo")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check(repo: Repo, head: str, *extra: str, base: str | None = None) -> tuple[int, Any]:
    result = run(
        "--repo", str(repo.path), "--base", base or repo.base, "--head", head, "--json", *extra
    )
    return result.returncode, json.loads(result.stdout)


def release(repo: Repo, *operations: str, preamble: str = "") -> str:
    repo.write("shop/migrations/0002_change.py", migration(*operations, preamble=preamble))
    return repo.commit("change")


# -- verdicts -----------------------------------------------------------------------------------


def test_no_migration_change_is_released_automatically(repo):
    repo.write("shop/views.py", "def index():\n    return 'v2'\n")
    head = repo.commit("views only")
    code, verdict = check(repo, head)
    assert code == 0
    assert verdict["verdict"] == "auto"
    assert (verdict["migrations_changed"], verdict["backwards_compatible"]) == (False, True)
    assert (verdict["base"], verdict["head"], verdict["exit_code"]) == (repo.base, head, 0)
    assert verdict["other_files_changed"] == 1


def test_additive_migration_needs_approval_but_is_compatible(repo):
    head = release(
        repo,
        'migrations.AddField(model_name="order", name="comment", field=models.TextField(null=True))',
        'migrations.CreateModel(name="Fill", fields=[("id", models.BigAutoField(primary_key=True)), '
        '("order", models.ForeignKey(on_delete=models.CASCADE, to="shop.order"))])',
        'migrations.AddIndex(model_name="order", index=models.Index(fields=["symbol"], name="order_symbol"))',
        'migrations.AddField(model_name="order", name="venue", field=models.CharField(max_length=8, db_default="iex"))',
        'migrations.AddField(model_name="fill", name="price", field=models.DecimalField(max_digits=20, decimal_places=6))',
        'migrations.AlterField(model_name="order", name="note", field=models.TextField(null=True, blank=True))',
        'migrations.RunSQL("CREATE INDEX CONCURRENTLY order_note ON shop_order (note)", '
        'reverse_sql="DROP INDEX order_note")',
    )
    code, verdict = check(repo, head)
    assert code == 3
    assert verdict["verdict"] == "needs_approval"
    assert (verdict["migrations_changed"], verdict["backwards_compatible"]) == (True, True)
    assert verdict["reasons"] == []
    [change] = verdict["migrations"]
    assert (change["path"], change["status"]) == ("shop/migrations/0002_change.py", "added")
    ops = [(o["op"], o["target"], o["compatible"]) for o in change["operations"]]
    assert ops == [
        ("AddField", "order.comment", True),
        ("CreateModel", "Fill", True),
        ("AddIndex", "order", True),
        ("AddField", "order.venue", True),
        ("AddField", "fill.price", True),  # NOT NULL, but on a table this release creates
        ("AlterField", "order.note", True),
        ("RunSQL", "sql", True),
    ]
    assert "manual approval required" in verdict["summary"]


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        (
            'migrations.RemoveField(model_name="order", name="note")',
            "RemoveField order.note: drops a column",
        ),
        (
            'migrations.RenameField(model_name="order", old_name="note", new_name="memo")',
            "RenameField order.note: renames a column",
        ),
        ('migrations.DeleteModel(name="Order")', "DeleteModel Order: drops a table"),
        (
            'migrations.RenameModel(old_name="Order", new_name="Ticket")',
            "RenameModel Order: renames a table",
        ),
        (
            'migrations.RunSQL("ALTER TABLE shop_order DROP COLUMN note;")',
            "RunSQL sql: SQL that drops a column",
        ),
        (
            'migrations.RunSQL(sql=["ALTER TABLE shop_order RENAME TO shop_ticket"])',
            "renames a table",
        ),
        (
            'migrations.RunSQL("ALTER TABLE shop_order ALTER COLUMN note SET NOT NULL")',
            "makes a column NOT NULL",
        ),
        (
            'migrations.AddField(model_name="order", name="side", field=models.CharField(max_length=4, default="buy"))',
            "AddField order.side: adds a NOT NULL column without db_default",
        ),
        (
            'migrations.AlterField(model_name="order", name="note", field=models.TextField(default=""))',
            "AlterField order.note: makes a nullable column NOT NULL",
        ),
    ],
    ids=[
        "RemoveField",
        "RenameField",
        "DeleteModel",
        "RenameModel",
        "RunSQL DROP COLUMN",
        "RunSQL RENAME",
        "RunSQL SET NOT NULL",
        "AddField NOT NULL",
        "AlterField to NOT NULL",
    ],
)
def test_breaking_migration_is_not_backwards_compatible(repo, operation, reason):
    head = release(repo, operation)
    code, verdict = check(repo, head)
    assert code == 3
    assert verdict["verdict"] == "needs_approval"
    assert verdict["backwards_compatible"] is False
    [line] = verdict["reasons"]
    assert line.startswith("shop/migrations/0002_change.py: ")
    assert reason in line
    assert "NOT backwards compatible" in verdict["summary"]


def test_run_sql_from_a_module_constant_is_read(repo):
    head = release(
        repo,
        "migrations.RunSQL(DROP_LEGACY, reverse_sql=migrations.RunSQL.noop)",
        preamble='\nDROP_LEGACY = """\nDROP TABLE IF EXISTS shop_legacy;\n"""\n',
    )
    code, verdict = check(repo, head)
    assert (code, verdict["backwards_compatible"]) == (3, False)
    assert "drops a table" in verdict["reasons"][0]


def test_what_cannot_be_judged_is_flagged_for_review(repo):
    head = release(
        repo,
        "migrations.RunPython(forwards, migrations.RunPython.noop)",
        "migrations.RunSQL(build_sql())",
        preamble="\n\ndef forwards(apps, schema_editor):\n    pass\n\n\ndef build_sql():\n    return ''\n",
    )
    code, verdict = check(repo, head)
    assert (code, verdict["backwards_compatible"]) == (3, True)
    assert [r.split(": ", 2)[1] for r in verdict["review"]] == ["RunPython python", "RunSQL sql"]


def test_deleting_or_editing_a_released_migration(repo):
    repo.write("shop/migrations/0001_initial.py", INITIAL.replace("max_length=32", "max_length=64"))
    edited = repo.commit("edit 0001")
    code, verdict = check(repo, edited)
    assert (code, verdict["backwards_compatible"]) == (3, True)
    assert verdict["migrations"][0]["status"] == "modified"
    assert "already applied it will not run it again" in verdict["review"][0]

    repo.remove("shop/migrations/0001_initial.py")
    deleted = repo.commit("delete 0001")
    code, verdict = check(repo, deleted)
    assert (code, verdict["backwards_compatible"]) == (3, False)
    assert "0001_initial.py was deleted" in verdict["reasons"][0]


def test_a_range_of_commits_is_judged_as_a_whole(repo):
    release(
        repo,
        'migrations.AddField(model_name="order", name="memo", field=models.TextField(null=True))',
    )
    repo.write(
        "shop/migrations/0003_drop.py",
        migration('migrations.RemoveField(model_name="order", name="note")').replace(
            '"0001_initial"', '"0002_change"'
        ),
    )
    head = repo.commit("drop note")
    code, verdict = check(repo, head)
    assert code == 3
    assert [m["path"] for m in verdict["migrations"]] == [
        "shop/migrations/0002_change.py",
        "shop/migrations/0003_drop.py",
    ]
    assert [m["compatible"] for m in verdict["migrations"]] == [True, False]
    # the same range, reversed in time, is an error-free check of the other direction
    code, back = check(repo, repo.base, base=head)
    assert back["migrations"][0]["status"] == "deleted"


def test_fail_on_incompatible_blocks(repo):
    head = release(repo, 'migrations.RemoveField(model_name="order", name="note")')
    code, verdict = check(repo, head, "--fail-on-incompatible")
    assert (code, verdict["verdict"], verdict["exit_code"]) == (2, "blocked", 2)
    additive = release(
        repo, 'migrations.AddField(model_name="order", name="x", field=models.TextField(null=True))'
    )
    code, verdict = check(repo, additive, "--fail-on-incompatible", base=head)
    assert (code, verdict["verdict"]) == (3, "needs_approval")


def test_text_output_for_people(repo):
    head = release(repo, 'migrations.DeleteModel(name="Order")')
    result = run("--repo", str(repo.path), "--base", repo.base, "--head", head)
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert lines[0] == f"release check {repo.base[:12]}..{head[:12]}: needs_approval"
    assert any(
        line.startswith("  NOT backwards compatible: shop/migrations/0002_change.py: DeleteModel")
        for line in lines
    )


# -- errors -------------------------------------------------------------------------------------


def test_unknown_revision_is_an_error(repo):
    result = run(
        "--repo", str(repo.path), "--base", repo.base, "--head", "no-such-branch", "--json"
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "verdict": "error",
        "exit_code": 1,
        "error": f"unknown revision 'no-such-branch' in {repo.path}",
    }
    assert "release check: error: unknown revision 'no-such-branch'" in result.stderr
    assert run("--repo", str(repo.path), "--base", "--", "--head", repo.base).returncode in (1, 2)


def test_not_a_repository_is_an_error(tmp_path):
    result = run("--repo", str(tmp_path), "--base", "HEAD~1", "--head", "HEAD")
    assert result.returncode == 1
    assert "is not a git repository" in result.stderr
    missing = run("--repo", str(tmp_path / "nope"), "--base", "a", "--head", "b")
    assert (missing.returncode, "is not a directory" in missing.stderr) == (1, True)


def test_a_migration_that_does_not_parse_is_an_error(repo):
    repo.write("shop/migrations/0002_broken.py", "class Migration(:\n")
    head = repo.commit("broken")
    result = run("--repo", str(repo.path), "--base", repo.base, "--head", head)
    assert result.returncode == 1
    assert "0002_broken.py does not parse" in result.stderr


# -- the project's own migrations ---------------------------------------------------------------


def test_every_migration_of_this_project_is_understood():
    spec = importlib.util.spec_from_file_location("release_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["release_check"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["release_check"]
    paths = sorted(p for p in ROOT.glob("**/migrations/[0-9]*.py") if ".venv" not in p.parts)
    assert paths
    for path in paths:
        source = path.read_text(encoding="utf-8")
        operations, constants = module.parse_migration(source, str(path))
        for call in operations:
            module.judge(call, constants, {})
