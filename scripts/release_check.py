#!/usr/bin/env python3
"""Release check: may the code at HEAD go out while the code at BASE is still running?

    scripts/release_check.py --base REV --head REV [--repo PATH] [--json] [--fail-on-incompatible]

It compares two git revisions of this repository (no Django, no database, nothing imported from
the project) and reads every migration that changed between them with `ast`.

Verdicts and exit codes:

  0  auto            no migration changed: deploy without asking anyone
  3  needs_approval  migrations changed: a person approves the release. The JSON says whether
                     they are backwards compatible with the code still running (BASE) during the
                     rollout, and why not when they are not
  2  blocked         only with --fail-on-incompatible: a migration is not backwards compatible
  1  error           bad arguments, not a git repository, unknown revision, unreadable migration

Not backwards compatible (the old code breaks against the migrated schema while both run):
RemoveField, RenameField, DeleteModel, RenameModel; AddField of a NOT NULL column without a
database default (the old code's INSERTs omit it; Django drops a `default=` from the column after
filling the existing rows, only `db_default=` stays); AlterField that turns a nullable column
NOT NULL without a database default; RunSQL that drops or renames a table or column or sets
NOT NULL; a migration file deleted or renamed (the database's history no longer matches).
Needs a human look but is not judged: RunPython, RunSQL that is not a literal string, an edited
migration that was already released. Expand/contract is the way out: add now, remove in a later
release once no running code reads the old column.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

EXIT_AUTO, EXIT_ERROR, EXIT_BLOCKED, EXIT_APPROVAL = 0, 1, 2, 3

MIGRATION_PATH = re.compile(r"(^|/)migrations/\d{4}_[\w]+\.py$")
ALWAYS_INCOMPATIBLE = {
    "RemoveField": "drops a column the running code still reads and writes",
    "RenameField": "renames a column the running code still uses by its old name",
    "DeleteModel": "drops a table the running code still uses",
    "RenameModel": "renames a table the running code still uses by its old name",
}
NEEDS_REVIEW = {
    "RunPython": "runs code on the data: check what it changes and how long it holds locks",
}
DANGEROUS_SQL = [
    (re.compile(r"\bDROP\s+(TABLE|VIEW|MATERIALIZED\s+VIEW)\b", re.I), "drops a table or view"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.I), "drops a column"),
    # Postgres: ALTER TABLE t DROP c (the COLUMN keyword is optional)
    (
        re.compile(
            r"\bALTER\s+TABLE\s+(IF\s+EXISTS\s+)?(ONLY\s+)?\S+\s+DROP\s+"
            r"(?!CONSTRAINT\b|COLUMN\b|DEFAULT\b|NOT\b|IDENTITY\b|EXPRESSION\b)\w+",
            re.I,
        ),
        "drops a column",
    ),
    (re.compile(r"\bRENAME\s+(TO|COLUMN)\b", re.I), "renames a table or column"),
    (re.compile(r"\bALTER\s+TABLE\s+\S+\s+RENAME\b", re.I), "renames a table or column"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "makes a column NOT NULL"),
    (re.compile(r"\bTRUNCATE\b", re.I), "empties a table"),
]


class CheckError(Exception):
    """Anything that makes the verdict impossible (exit 1)."""


@dataclass
class Operation:
    op: str
    target: str
    compatible: bool
    review: bool = False
    reason: str = ""


@dataclass
class MigrationChange:
    path: str
    status: str  # added | modified | deleted | renamed
    operations: list[Operation] = field(default_factory=list)
    compatible: bool = True
    notes: list[str] = field(default_factory=list)


# -- git ------------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError as exc:
        raise CheckError("git is not installed") from exc
    if result.returncode != 0:
        raise CheckError(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'}")
    return result.stdout


def resolve(repo: Path, rev: str) -> str:
    if not rev or rev.startswith("-"):
        raise CheckError(f"not a revision: {rev!r}")
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except CheckError as exc:
        raise CheckError(f"unknown revision {rev!r} in {repo}") from exc


def changed_files(repo: Path, base: str, head: str) -> list[tuple[str, str, str | None]]:
    """(status letter, path at head or base, old path for renames)."""
    out = git(repo, "diff", "--name-status", "-M", "--no-color", base, head)
    rows: list[tuple[str, str, str | None]] = []
    for line in out.splitlines():
        parts = line.split("\t")
        letter = parts[0][:1]
        if letter in ("R", "C"):
            rows.append((letter, parts[2], parts[1]))
        elif len(parts) >= 2:
            rows.append((letter, parts[1], None))
    return rows


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def list_tree(repo: Path, rev: str, folder: str) -> list[str]:
    out = git(repo, "ls-tree", "--name-only", f"{rev}:{folder}")
    return [f"{folder}/{name}" for name in out.splitlines()]


# -- migration parsing ----------------------------------------------------------------------------


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _kwargs(call: ast.Call) -> dict[str, ast.AST]:
    return {kw.arg: kw.value for kw in call.keywords if kw.arg}


def _literal(node: ast.AST | None, constants: dict[str, Any]) -> Any:
    if node is None:
        return None
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _arg(call: ast.Call, index: int, name: str) -> ast.AST | None:
    kwargs = _kwargs(call)
    if name in kwargs:
        return kwargs[name]
    return call.args[index] if len(call.args) > index else None


@dataclass
class FieldDef:
    null: bool
    db_default: bool
    many_to_many: bool


def _field_def(node: ast.AST | None, constants: dict[str, Any]) -> FieldDef | None:
    if not isinstance(node, ast.Call):
        return None
    kwargs = _kwargs(node)
    kind = _call_name(node)
    return FieldDef(
        null=_literal(kwargs.get("null"), constants) is True,
        db_default="db_default" in kwargs,
        many_to_many=kind == "ManyToManyField",
    )


def parse_migration(source: str, path: str) -> tuple[list[ast.Call], dict[str, Any]]:
    """The `operations` calls of the Migration class, and the module's literal constants."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise CheckError(f"{path} does not parse: {exc.msg} (line {exc.lineno})") from exc
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                value = _literal(node.value, {})
                if value is not None:
                    constants[target.id] = value
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name != "Migration":
            continue
        for item in node.body:
            targets = (
                item.targets
                if isinstance(item, ast.Assign)
                else [item.target]
                if isinstance(item, ast.AnnAssign)
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets):
                value = getattr(item, "value", None)
                if not isinstance(value, ast.List | ast.Tuple):
                    raise CheckError(f"{path}: operations is not a literal list")
                return [op for op in value.elts if isinstance(op, ast.Call)], constants
        return [], constants
    raise CheckError(f"{path} has no Migration class")


def field_history(sources: list[tuple[str, str]]) -> dict[tuple[str, str], FieldDef]:
    """(model, field) -> latest definition, from migrations in order (CreateModel/AddField/
    AlterField)."""
    fields: dict[tuple[str, str], FieldDef] = {}
    for path, source in sources:
        try:
            operations, constants = parse_migration(source, path)
        except CheckError:
            continue
        for call in operations:
            name = _call_name(call)
            if name == "CreateModel":
                model = str(_literal(_arg(call, 0, "name"), constants) or "").lower()
                for item in getattr(_arg(call, 1, "fields"), "elts", []):
                    if isinstance(item, ast.Tuple) and len(item.elts) == 2:
                        fname = _literal(item.elts[0], constants)
                        definition = _field_def(item.elts[1], constants)
                        if isinstance(fname, str) and definition:
                            fields[(model, fname.lower())] = definition
            elif name in ("AddField", "AlterField"):
                model = str(_literal(_arg(call, 0, "model_name"), constants) or "").lower()
                fname = str(_literal(_arg(call, 1, "name"), constants) or "").lower()
                definition = _field_def(_arg(call, 2, "field"), constants)
                if definition:
                    fields[(model, fname)] = definition
    return fields


def _sql_texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        texts: list[str] = []
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list | tuple) and item and isinstance(item[0], str):
                texts.append(item[0])  # (sql, params)
            else:
                return None
        return texts
    return None


def judge(
    call: ast.Call, constants: dict[str, Any], history: dict[tuple[str, str], FieldDef]
) -> Operation:
    name = _call_name(call)
    if name in ("RunSQL", "RunPython"):
        model, target = None, {"RunSQL": "sql", "RunPython": "python"}[name]
    else:
        # RenameModel(old_name=...), CreateModel/DeleteModel/AlterModel*(name=...),
        # everything else (fields, indexes, constraints) by model_name=...
        if name == "RenameModel":
            keyword = "old_name"
        elif name.endswith(("Model", "Together", "RespectTo")) or name.startswith("AlterModel"):
            keyword = "name"
        else:
            keyword = "model_name"
        model = _literal(_arg(call, 0, keyword), constants)
        target = str(model or "")
    if name in ("AddField", "AlterField", "RemoveField", "RenameField"):
        field_arg = "old_name" if name == "RenameField" else "name"
        target = f"{model}.{_literal(_arg(call, 1, field_arg), constants)}"
    if name in ALWAYS_INCOMPATIBLE:
        return Operation(name, target, False, reason=ALWAYS_INCOMPATIBLE[name])
    if name in NEEDS_REVIEW:
        return Operation(name, target, True, review=True, reason=NEEDS_REVIEW[name])
    if name == "AddField":
        definition = _field_def(_arg(call, 2, "field"), constants)
        if definition and not (definition.null or definition.db_default or definition.many_to_many):
            return Operation(
                name,
                target,
                False,
                reason="adds a NOT NULL column without db_default: the running code's INSERTs "
                "omit it and fail (use null=True, or db_default=)",
            )
        return Operation(name, target, True)
    if name == "AlterField":
        definition = _field_def(_arg(call, 2, "field"), constants)
        model_key = str(model or "").lower()
        field_key = str(_literal(_arg(call, 1, "name"), constants) or "").lower()
        before = history.get((model_key, field_key))
        if definition and not definition.null and not definition.db_default:
            if before is None:
                return Operation(
                    name,
                    target,
                    True,
                    review=True,
                    reason="alters a column whose previous definition was not found: check "
                    "that it does not become NOT NULL",
                )
            if before.null:
                return Operation(
                    name,
                    target,
                    False,
                    reason="makes a nullable column NOT NULL without db_default: the running "
                    "code may still write NULL or omit it",
                )
        return Operation(name, target, True)
    if name == "RunSQL":
        texts = _sql_texts(_literal(_arg(call, 0, "sql"), constants))
        if texts is None:
            return Operation(
                name, target, True, review=True, reason="the SQL is not a literal: read it"
            )
        found = sorted(
            {what for text in texts for pattern, what in DANGEROUS_SQL if pattern.search(text)}
        )
        if found:
            return Operation(name, target, False, reason="SQL that " + ", ".join(found))
        return Operation(name, target, True)
    return Operation(name, target, True)


# -- the check ------------------------------------------------------------------------------------


def app_sources(repo: Path, rev: str, folder: str) -> list[tuple[str, str]]:
    try:
        paths = sorted(p for p in list_tree(repo, rev, folder) if MIGRATION_PATH.search(p))
    except CheckError:
        return []
    return [(p, show(repo, rev, p)) for p in paths]


def check(repo: Path, base_rev: str, head_rev: str) -> dict[str, Any]:
    if not repo.is_dir():
        raise CheckError(f"{repo} is not a directory")
    try:
        git(repo, "rev-parse", "--git-dir")
    except CheckError as exc:
        raise CheckError(f"{repo} is not a git repository") from exc
    base, head = resolve(repo, base_rev), resolve(repo, head_rev)
    changes: list[MigrationChange] = []
    other_files = 0
    # tables created within this release: the running code has never used them
    new_models: set[tuple[str, str]] = set()
    for letter, path, old_path in sorted(changed_files(repo, base, head), key=lambda r: r[1]):
        is_migration = MIGRATION_PATH.search(path) or (
            old_path is not None and MIGRATION_PATH.search(old_path)
        )
        if not is_migration:
            other_files += 1
            continue
        status = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "added"}.get(
            letter, "modified"
        )
        change = MigrationChange(path=path, status=status)
        changes.append(change)
        if status == "deleted" or (status == "renamed" and old_path is not None):
            change.compatible = False
            moved = old_path or path
            change.notes.append(
                f"{moved} was {status}: databases that applied it keep a history this code no "
                "longer has"
            )
            if status == "deleted":
                continue
        if status == "modified":
            change.notes.append(
                "an existing migration was edited: databases that already applied it will not "
                "run it again"
            )
        folder = str(PurePosixPath(path).parent)
        earlier = [(p, s) for p, s in app_sources(repo, head, folder) if p < path]
        history = field_history(earlier)
        operations, constants = parse_migration(show(repo, head, path), path)
        for call in operations:
            operation = judge(call, constants, history)
            model = operation.target.split(".", 1)[0].lower()
            if operation.op == "CreateModel" and status == "added":
                new_models.add((folder, model))
            elif not operation.compatible and (folder, model) in new_models:
                operation.compatible = True
                operation.reason = "on a table created in this release: no running code uses it"
            change.operations.append(operation)
            if not operation.compatible:
                change.compatible = False

    reasons = [
        f"{c.path}: {o.op} {o.target}: {o.reason}"
        for c in changes
        for o in c.operations
        if not o.compatible
    ] + [f"{note}" for c in changes if not c.compatible for note in c.notes]
    reviews = [
        f"{c.path}: {o.op} {o.target}: {o.reason}"
        for c in changes
        for o in c.operations
        if o.review
    ] + [note for c in changes if c.compatible for note in c.notes]
    compatible = all(c.compatible for c in changes)
    if not changes:
        verdict, summary = "auto", "no migration changed: the release can go out automatically"
    elif compatible:
        verdict = "needs_approval"
        summary = (
            f"{len(changes)} migration(s) changed: manual approval required; they are backwards "
            "compatible with the running code"
        )
    else:
        verdict = "needs_approval"
        summary = (
            f"{len(changes)} migration(s) changed and NOT backwards compatible: the code still "
            "running during the rollout would break. Approve only with downtime or an "
            "expand/contract plan"
        )
    return {
        "base": base,
        "head": head,
        "verdict": verdict,
        "summary": summary,
        "migrations_changed": bool(changes),
        "backwards_compatible": compatible,
        "reasons": reasons,
        "review": reviews,
        "migrations": [asdict(c) for c in changes],
        "other_files_changed": other_files,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare two revisions: auto (0), needs approval (3), blocked (2), error (1).",
    )
    parser.add_argument("--base", required=True, help="the revision running now")
    parser.add_argument("--head", required=True, help="the revision to release")
    parser.add_argument("--repo", default=".", help="the git repository (default: .)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument(
        "--fail-on-incompatible",
        action="store_true",
        help="exit 2 (blocked) instead of 3 when a migration is not backwards compatible",
    )
    args = parser.parse_args(argv)
    repo = Path(args.repo).resolve()
    try:
        result = check(repo, args.base, args.head)
    except CheckError as exc:
        if args.json:
            print(json.dumps({"verdict": "error", "exit_code": EXIT_ERROR, "error": str(exc)}))
        print(f"release check: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if result["verdict"] == "auto":
        code = EXIT_AUTO
    elif not result["backwards_compatible"] and args.fail_on_incompatible:
        result["verdict"], code = "blocked", EXIT_BLOCKED
    else:
        code = EXIT_APPROVAL
    result["exit_code"] = code
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(f"release check {result['base'][:12]}..{result['head'][:12]}: {result['verdict']}")
        print(f"  {result['summary']}")
        for reason in result["reasons"]:
            print(f"  NOT backwards compatible: {reason}")
        for note in result["review"]:
            print(f"  review: {note}")
    return code


if __name__ == "__main__":
    sys.exit(main())
