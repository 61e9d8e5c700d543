"""Every environment setting is read by code and covered by a test; every Flipt flag is read
through `flag_enabled`.

A setting that parses but changes nothing is a defect. This module enumerates what the settings
package `torghut_site/settings/` reads from the environment (its modules read as one source, in
the order `__init__.py` imports them; "settings.py" below means that source): the
`env.<helper>("NAME", ...)` calls, including the ones a helper such as `kafka_security(prefix)` or
`kafka_consumer(prefix, ...)` makes with an f-string name, and
every flag of `torghut_site/flags.py::FLAG_SETTINGS`, then fails, naming the setting, for one that

1. nothing reads: no app module (torghut_site, trading, orderfeed, whitepapers, autonomy, ops; not
   migrations, not tests, not settings.py) names the attribute, in code or in a string such as
   `flag_enabled("NAME")` or `getattr(settings, f"{prefix}_NAME")` called with a literal prefix,
   unless the framework reads it (FRAMEWORK) or settings.py consumes it while building another
   setting (DERIVED, checked against settings.py's own data flow);
2. no test names: neither the attribute nor the env name appears in a test module other than
   `tests/foundation/test_settings.py` (startup validation) and this module;
3. is a Flipt flag whose setting no app module reads through `flag_enabled("SETTING")`: a
   setting read as `settings.X` is never flipped at run time.

Names are collected from the syntax tree (names, attributes, keyword arguments and the words of
string literals), so comments and docstrings do not count as a read or as a test.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from tests.conftest import ROOT
from torghut_site.flags import FLAG_SETTINGS

APP_PACKAGES = ("torghut_site", "trading", "orderfeed", "whitepapers", "autonomy", "ops")
SETTINGS_PACKAGE = "torghut_site/settings"


def settings_modules() -> tuple[str, ...]:
    """The settings package's concern modules, in the order its `__init__.py` imports them (the
    order they run in), then `__init__.py` itself."""
    init = (ROOT / SETTINGS_PACKAGE / "__init__.py").read_text(encoding="utf-8")
    modules = [
        node.module
        for node in ast.parse(init).body
        if isinstance(node, ast.ImportFrom)
        and node.module
        and any(a.name == "*" for a in node.names)
    ]
    paths = tuple(m.replace(".", "/") + ".py" for m in modules)
    return (*paths, f"{SETTINGS_PACKAGE}/__init__.py")


SETTINGS_MODULES = settings_modules()
SETTINGS_FILES = (*SETTINGS_MODULES, "torghut_site/settings_test.py")
FLAGS_FILE = "torghut_site/flags.py"
# flags.py's own tables name every flag setting; naming one there is not reading it
FLAG_TABLES = frozenset({"FLAG_SETTINGS", "SETTING_FLAGS", "ONE_WAY_FLAGS"})
EXCLUDED_TESTS = ("tests/foundation/test_settings.py", "tests/foundation/test_settings_coverage.py")

# env name -> the setting that consumes it, for names settings.py reads into a private variable,
# under an alias, or only to build another setting. Each entry is checked: the consumer must
# depend on the variable the name is read into (settings.py's assignments, transitively).
DERIVED: dict[str, str] = {
    # aliases of DB_DSN, all read into `_db_url` and parsed into DATABASES
    "DB_DSN": "DATABASES",
    "DB_URL": "DATABASES",
    "DATABASE_URL": "DATABASES",
    # REDIS_URL is CACHE_URL's fallback; both become the Redis cache LOCATION
    "REDIS_URL": "CACHES",
    "CACHE_URL": "CACHES",
    # DRF throttle rates, read by DRF from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    "API_THROTTLE_ANON": "REST_FRAMEWORK",
    "API_THROTTLE_USER": "REST_FRAMEWORK",
    "API_THROTTLE_CONTROL": "REST_FRAMEWORK",
    "WHITEPAPER_WEBHOOK_THROTTLE": "REST_FRAMEWORK",
    # the root logger's level and the console handler's formatter
    "LOG_LEVEL": "LOGGING",
    "LOG_FORMAT": "LOGGING",
    # Redis's redelivery timeout, handed to kombu as a broker transport option
    "CELERY_VISIBILITY_TIMEOUT_SECONDS": "CELERY_BROKER_TRANSPORT_OPTIONS",
    # the single-account lane (TRADING_MULTI_ACCOUNT_ENABLED off) runs on this broker; a
    # multi-account lane without its own "broker" too
    "TRADING_BROKER": "TRADING_LANES",
    # multi-account lanes, parsed and validated into TRADING_LANES
    "TRADING_ACCOUNTS_JSON": "TRADING_LANES",
    # deployment configuration read at start: which lanes TRADING_LANES holds (not a Flipt flag)
    "TRADING_MULTI_ACCOUNT_ENABLED": "TRADING_LANES",
    # an ObjectBucketClaim's host/port/TLS (and their BUCKET_* aliases) build the S3 endpoint,
    # which, with the Ceph credentials, region, bucket and timeout, builds STORAGES["artifacts"]
    "WHITEPAPER_CEPH_BUCKET_HOST": "STORAGES",
    "BUCKET_HOST": "STORAGES",
    "WHITEPAPER_CEPH_BUCKET_PORT": "STORAGES",
    "BUCKET_PORT": "STORAGES",
    "WHITEPAPER_CEPH_USE_TLS": "STORAGES",
    "WHITEPAPER_CEPH_ENDPOINT": "STORAGES",
    "WHITEPAPER_CEPH_ACCESS_KEY": "STORAGES",
    "AWS_ACCESS_KEY_ID": "STORAGES",
    "WHITEPAPER_CEPH_SECRET_KEY": "STORAGES",
    "AWS_SECRET_ACCESS_KEY": "STORAGES",
    "WHITEPAPER_CEPH_REGION": "STORAGES",
    "WHITEPAPER_CEPH_BUCKET": "STORAGES",
    "BUCKET_NAME": "STORAGES",
    "WHITEPAPER_CEPH_TIMEOUT_SECONDS": "STORAGES",
    # per-model prices, parsed and validated into LLM_MODEL_PRICES (trading/services/llm_budget.py)
    "LLM_MODEL_PRICES_JSON": "LLM_MODEL_PRICES",
    # per-model training cutoffs, parsed into LLM_MODEL_TRAINING_CUTOFFS (dspy_lanes/evaluate.py)
    "LLM_MODEL_TRAINING_CUTOFFS_JSON": "LLM_MODEL_TRAINING_CUTOFFS",
}

# settings read by a framework, not by torghut's own modules
FRAMEWORK: dict[str, str] = {
    "SECRET_KEY": "Django: signing (sessions, CSRF, password reset tokens)",
    "DEBUG": "Django: technical error pages, template debug",
    "ALLOWED_HOSTS": "Django: HttpRequest.get_host()",
    "CSRF_TRUSTED_ORIGINS": "Django: CsrfViewMiddleware origin check",
    "DATABASES": "Django: django.db.connections",
    "CACHES": "Django: django.core.cache.caches (DRF throttling, locks)",
    "SECURE_SSL_REDIRECT": "Django: SecurityMiddleware",
    "SECURE_HSTS_SECONDS": "Django: SecurityMiddleware (Strict-Transport-Security)",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "Django: SecurityMiddleware (Strict-Transport-Security)",
    "SECURE_HSTS_PRELOAD": "Django: SecurityMiddleware (Strict-Transport-Security)",
    "SESSION_COOKIE_SECURE": "Django: SessionMiddleware (the session cookie's Secure flag)",
    "CSRF_COOKIE_SECURE": "Django: CsrfViewMiddleware (the CSRF cookie's Secure flag)",
    "REST_FRAMEWORK": "DRF: api_settings (throttle rates)",
    "LOGGING": "Django: logging.config.dictConfig at setup",
    "CELERY_BROKER_URL": "Celery: config_from_object(namespace='CELERY') broker_url",
    "CELERY_RESULT_BACKEND": "Celery: result_backend",
    "CELERY_BROKER_TRANSPORT_OPTIONS": "Celery/kombu: broker_transport_options",
    "STORAGES": "Django/django-storages: storages['artifacts']",
}

# covered by work in progress; must be empty on main
IN_PROGRESS: frozenset[str] = frozenset()  # work in progress on a branch; empty on main

# torghut_site.env.Env's readers (not `problem`, whose argument is a message)
ENV_READERS = frozenset(
    {"raw", "is_set", "str", "optional_str", "secret", "bool", "int", "optional_int", "float"}
    | {"decimal", "choice", "csv", "json"}
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- settings.py: which env name is read into which variable ----------------------------------
@dataclass
class SettingsModel:
    env_to_attr: dict[str, str] = field(default_factory=dict)  # env name -> variable
    deps: dict[str, set[str]] = field(default_factory=dict)  # variable -> variables it uses
    attrs: set[str] = field(default_factory=set)
    unassigned: set[str] = field(default_factory=set)  # env names read outside an assignment

    def depends_on(self, consumer: str, variable: str) -> bool:
        seen: set[str] = set()
        todo = [consumer]
        while todo:
            name = todo.pop()
            if name == variable:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(self.deps.get(name, ()))
        return False


def _env_call_names(node: ast.AST, templates: Mapping[str, list[str]]) -> Iterable[str]:
    """Env names read by `env.<helper>("NAME", "ALIAS", ...)` calls under `node`, and by calls of
    settings.py's own helpers (`kafka_security("PREFIX")`) whose body reads f"{prefix}_X"."""
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id == "env" and func.attr in ENV_READERS:
                for arg in call.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        yield arg.value
        elif isinstance(func, ast.Name) and func.id in templates:
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield from (first.value + suffix for suffix in templates[func.id])


def _helper_templates(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level functions whose env reads are f"{first_param}SUFFIX": name -> suffixes."""
    templates: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.args.args:
            continue
        param = node.args.args[0].arg
        for call in ast.walk(node):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name)
                and call.func.value.id == "env"
                and call.func.attr in ENV_READERS
                and call.args
                and isinstance(call.args[0], ast.JoinedStr)
            ):
                continue
            parts = call.args[0].values
            if (
                len(parts) == 2
                and isinstance(parts[0], ast.FormattedValue)
                and isinstance(parts[0].value, ast.Name)
                and parts[0].value.id == param
                and isinstance(parts[1], ast.Constant)
            ):
                templates.setdefault(node.name, []).append(str(parts[1].value))
    return templates


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Subscript | ast.Attribute):
        return _target_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    return []


def _loaded_names(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _statement_flow(stmt: ast.stmt) -> tuple[list[str], ast.AST | None]:
    """(variables written, expression read) of one module-level statement."""
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in _target_names(t)], stmt.value
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        return _target_names(stmt.target), stmt.value
    if isinstance(stmt, ast.For):
        return _target_names(stmt.target), stmt.iter
    # `TRADING_LANES.append({...})`, `security.update(...)`: a mutation of the receiver
    if (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Attribute)
        and _target_names(stmt.value.func.value) != ["env"]
    ):
        return _target_names(stmt.value.func.value), stmt.value
    return [], None


def settings_model(source: str) -> SettingsModel:
    tree = ast.parse(source)
    templates = _helper_templates(tree)
    model = SettingsModel()

    def visit(body: list[ast.stmt], guards: frozenset[str]) -> None:
        """`guards`: the names the enclosing `if` tests read (a control dependency)."""
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom):
                continue
            written, read = _statement_flow(stmt)
            names = list(_env_call_names(read, templates)) if read is not None else []
            for target in written:
                model.attrs.add(target)
                model.deps.setdefault(target, set()).update(_loaded_names(read) | guards)
                for name in names:
                    # `(P_TOPIC, P_POLL_MS) = kafka_consumer("P", ...)`: each name into the
                    # variable of that name; one the statement does not write is unassigned
                    if len(written) > 1 and name not in written:
                        model.unassigned.add(name)
                    else:
                        model.env_to_attr.setdefault(name, name if name in written else target)
            if not written:
                tests = [getattr(stmt, "test", None)]
                for expr in tests:
                    if expr is not None:
                        model.unassigned.update(_env_call_names(expr, templates))
            inner = guards | _loaded_names(getattr(stmt, "test", None))
            for child in ("body", "orelse", "handlers", "finalbody"):
                visit(getattr(stmt, child, []) or [], inner)

    visit(tree.body, frozenset())
    model.unassigned -= set(model.env_to_attr)
    return model


# -- app and test modules: which names they mention -------------------------------------------
def _docstring_ids(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _skipped_tables(tree: ast.Module, tables: frozenset[str]) -> set[int]:
    skipped: set[int] = set()
    for stmt in tree.body:
        written, value = _statement_flow(stmt)
        if value is not None and set(written) & tables:
            skipped.update(id(n) for n in ast.walk(value))
    return skipped


@dataclass
class Mentions:
    words: set[str] = field(default_factory=set)
    flag_reads: set[str] = field(default_factory=set)  # flag_enabled("SETTING")


class _PrefixTemplates(ast.NodeVisitor):
    """Functions that read `getattr(settings, f"{param}SUFFIX")`: name -> (param index, suffix)."""

    def __init__(self) -> None:
        self.found: dict[str, list[tuple[int, str]]] = {}
        self._functions: list[ast.FunctionDef] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._functions.append(node)
        self.generic_visit(node)
        self._functions.pop()

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if not self._functions or len(node.values) != 2:
            return
        fn = self._functions[-1]
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        head, tail = node.values
        if (
            isinstance(head, ast.FormattedValue)
            and isinstance(head.value, ast.Name)
            and head.value.id in params
            and isinstance(tail, ast.Constant)
        ):
            self.found.setdefault(fn.name, []).append(
                (params.index(head.value.id), str(tail.value))
            )


def _prefix_templates(trees: Iterable[ast.Module]) -> dict[str, list[tuple[int, str]]]:
    visitor = _PrefixTemplates()
    trees = list(trees)
    for tree in trees:
        visitor.visit(tree)
    return _passed_on(trees, visitor.found)


def _passed_on(
    trees: list[ast.Module], found: dict[str, list[tuple[int, str]]]
) -> dict[str, list[tuple[int, str]]]:
    """A function that hands its own parameter on as the prefix of a templated function
    (`consumer_build(prefix, ...)` calling `consumer_settings_from(prefix, ...)`) reads what that
    function reads, for the prefix it is called with."""
    functions = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    changed = True
    while changed:
        changed = False
        for fn in functions:
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                callee = str(getattr(call.func, "id", None) or getattr(call.func, "attr", ""))
                for index, suffix in list(found.get(callee, ())):
                    arg = call.args[index] if index < len(call.args) else None
                    if isinstance(arg, ast.Name) and arg.id in params:
                        entry = (params.index(arg.id), suffix)
                        if entry not in found.setdefault(fn.name, []):
                            found[fn.name].append(entry)
                            changed = True
    return found


def mentions(sources: Mapping[str, str], *, tables: frozenset[str] = frozenset()) -> Mentions:
    return _mentions(tuple(sorted(sources.items())), tables)


@functools.cache  # the repository's sources are parsed once per session (about 2 s)
def _mentions(sources: tuple[tuple[str, str], ...], tables: frozenset[str]) -> Mentions:
    trees = {path: ast.parse(text) for path, text in sources}
    templates = _prefix_templates(trees.values())
    result = Mentions()
    for path, tree in trees.items():
        skip = _docstring_ids(tree)
        if path == FLAGS_FILE:
            skip |= _skipped_tables(tree, tables)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Name):
                result.words.add(node.id)
            elif isinstance(node, ast.Attribute):
                result.words.add(node.attr)
            elif isinstance(node, ast.keyword) and node.arg:
                result.words.add(node.arg)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                result.words.update(_WORD.findall(node.value))
            elif isinstance(node, ast.Call):
                _call_mentions(node, templates, result)
    return result


def _call_mentions(
    call: ast.Call, templates: Mapping[str, list[tuple[int, str]]], result: Mentions
) -> None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    literal = [
        a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
        for a in call.args
    ]
    if name == "flag_enabled" and literal and isinstance(literal[0], str):
        result.flag_reads.add(literal[0])
    for index, suffix in templates.get(name, ()):
        prefix = literal[index] if index < len(literal) else None
        if prefix is not None:
            result.words.add(prefix + suffix)


# -- the audit ---------------------------------------------------------------------------------
def audit(
    *,
    settings_source: str,
    flag_settings: Mapping[str, str],
    app_sources: Mapping[str, str],
    test_sources: Mapping[str, str],
    derived: Mapping[str, str] = DERIVED,
    framework: Mapping[str, str] = FRAMEWORK,
    in_progress: frozenset[str] = IN_PROGRESS,
) -> list[str]:
    """Every problem found, one line each, naming the setting."""
    model = settings_model(settings_source)
    app = mentions(app_sources, tables=FLAG_TABLES)
    tested = mentions(test_sources).words
    problems = [
        f"{name}: read outside an assignment in settings.py; add it to DERIVED"
        for name in sorted(model.unassigned)
    ]
    problems += _derived_problems(model, derived)
    setting_flags = {setting: flag for flag, setting in flag_settings.items()}
    for name, attr in sorted(model.env_to_attr.items()):
        if {name, attr, setting_flags.get(attr, "")} & in_progress:
            continue
        consumer = derived.get(name, attr)
        if attr.startswith("_") and name not in derived:
            problems.append(f"{name}: read into private {attr}; add it to DERIVED")
        elif consumer not in framework and consumer not in app.words:
            problems.append(f"{name} ({consumer}): nothing reads it")
        # an alias, a private variable or a setting built from several names: the env name
        # itself must be named by a test
        shared = attr.startswith("_") or list(model.env_to_attr.values()).count(attr) > 1
        if not ({name} if shared else {name, attr}) & tested:
            problems.append(f"{name} ({attr}): no test covers it")
    for flag_key, setting in sorted(flag_settings.items()):
        if {flag_key, setting} & in_progress:
            continue
        if setting not in model.attrs:
            problems.append(f"{flag_key} ({setting}): settings.py defines no such setting")
        if setting not in app.flag_reads:
            problems.append(
                f"{flag_key} ({setting}): not read through flag_enabled(), so flipping it "
                "changes nothing"
            )
        if not {flag_key, setting} & tested:
            problems.append(f"{flag_key} ({setting}): no test covers it")
    known = set(model.env_to_attr) | model.attrs | set(flag_settings) | set(flag_settings.values())
    problems += [
        f"IN_PROGRESS names {name}, which is neither a setting nor a flag"
        for name in sorted(in_progress - known)
    ]
    return problems


def _derived_problems(model: SettingsModel, derived: Mapping[str, str]) -> list[str]:
    problems = []
    for name, consumer in sorted(derived.items()):
        variable = model.env_to_attr.get(name)
        if variable is None:
            problems.append(f"DERIVED names {name}, which settings.py does not read")
        elif not model.depends_on(consumer, variable):
            problems.append(
                f"DERIVED says {consumer} consumes {name}, but {consumer} is not built from "
                f"{variable}"
            )
    return problems


def _read_tree(packages: Iterable[str], *, tests: bool) -> dict[str, str]:
    sources = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts:
                continue
            if ("tests" in parts) != tests or relative in SETTINGS_FILES + EXCLUDED_TESTS:
                continue
            sources[relative] = path.read_text(encoding="utf-8")
    return sources


@functools.cache
def repository_sources() -> tuple[str, dict[str, str], dict[str, str]]:
    # the package's modules as one source, in the order they run: a later module builds on an
    # earlier one's variables (its `from torghut_site.settings.x import NAME` is not a statement
    # the data flow reads, the name itself is)
    settings_source = "\n".join(
        (ROOT / path).read_text(encoding="utf-8") for path in SETTINGS_MODULES
    )
    return (
        settings_source,
        _read_tree(APP_PACKAGES, tests=False),
        _read_tree(("tests", *APP_PACKAGES), tests=True),
    )


# -- the meta-test -----------------------------------------------------------------------------
def test_every_setting_is_read_and_tested_and_every_flag_is_flippable():
    settings_source, app_sources, test_sources = repository_sources()
    problems = audit(
        settings_source=settings_source,
        flag_settings=FLAG_SETTINGS,
        app_sources=app_sources,
        test_sources=test_sources,
    )
    assert problems == []


def test_the_enumeration_sees_every_env_read_of_settings_py():
    settings_source, _, _ = repository_sources()
    model = settings_model(settings_source)
    # spot checks across the reading shapes: plain, alias, f-string helper, private, nested
    assert model.env_to_attr["TRADING_POLL_MS"] == "TRADING_POLL_MS"
    assert model.env_to_attr["TRADING_AUTONOMY_ARTIFACT_DIR"] == "TRADING_ARTIFACT_DIR"
    assert model.env_to_attr["DJANGO_SECRET_KEY"] == "SECRET_KEY"
    assert model.env_to_attr["DATABASE_URL"] == "_db_url"
    assert model.env_to_attr["WHITEPAPER_KAFKA_SASL_PASSWORD"] == "WHITEPAPER_KAFKA"
    assert model.env_to_attr["API_THROTTLE_CONTROL"] == "REST_FRAMEWORK"
    assert model.env_to_attr["WHITEPAPER_CEPH_USE_TLS"] == "_scheme"
    assert model.unassigned == set()
    # a plain-text scan finds no env read the syntax-tree walk missed
    readers = "|".join(sorted(ENV_READERS))
    first_names = set(re.findall(rf"\benv\.(?:{readers})\(\s*\"(\w+)\"", settings_source))
    suffixes = re.findall(rf"\benv\.(?:{readers})\(\s*f\"{{prefix}}(\w+)\"", settings_source)
    prefixes = re.findall(r"\bkafka_security\(\"(\w+)\"\)", settings_source)
    assert len(suffixes) == 4 and len(prefixes) == 3
    expected = first_names | {p + s for p in prefixes for s in suffixes}
    assert expected - set(model.env_to_attr) == set()
    assert len(model.env_to_attr) > 250


# -- self-tests: each failure mode, on a synthetic settings source -----------------------------
SYNTHETIC = """
from torghut_site.env import Env
env = Env()
BAR = env.int("BAR", default=1)
FOO = env.int("FOO", default=1)
"""
READS_BAR = {"trading/bar.py": "from django.conf import settings\nX = settings.BAR\n"}
TESTS_BAR = {"tests/test_bar.py": "def test_bar(settings):\n    settings.BAR = 2\n"}


def _audit(source: str, *, flags=None, app=None, tests=None, **kwargs) -> list[str]:
    return audit(
        settings_source=source,
        flag_settings=flags or {},
        app_sources=app if app is not None else READS_BAR,
        test_sources=tests if tests is not None else TESTS_BAR,
        **{"derived": {}, "framework": {}, "in_progress": frozenset(), **kwargs},
    )


def test_self_a_setting_nothing_reads_fails():
    assert _audit(SYNTHETIC) == [
        "FOO (FOO): nothing reads it",
        "FOO (FOO): no test covers it",
    ]


def test_self_a_new_setting_in_the_real_settings_module_fails():
    settings_source, app_sources, test_sources = repository_sources()
    sources = {
        "flag_settings": FLAG_SETTINGS,
        "app_sources": app_sources,
        "test_sources": test_sources,
    }
    before = audit(settings_source=settings_source, **sources)  # type: ignore[arg-type]
    after = audit(
        settings_source=settings_source + '\nFOO = env.int("FOO", default=1)\n',
        **sources,  # type: ignore[arg-type]
    )
    assert [p for p in after if p not in before] == [
        "FOO (FOO): nothing reads it",
        "FOO (FOO): no test covers it",
    ]


def test_self_a_docstring_or_comment_is_not_a_read_nor_a_test():
    app = {**READS_BAR, "trading/foo.py": '"""FOO tunes foo."""\n# settings.FOO\n'}
    tests = {**TESTS_BAR, "tests/test_foo.py": '"""FOO is tested elsewhere."""\n# FOO\n'}
    assert _audit(SYNTHETIC, app=app, tests=tests) == [
        "FOO (FOO): nothing reads it",
        "FOO (FOO): no test covers it",
    ]


def test_self_a_read_setting_that_no_test_names_fails():
    app = {**READS_BAR, "trading/foo.py": "from django.conf import settings\nY = settings.FOO\n"}
    assert _audit(SYNTHETIC, app=app) == ["FOO (FOO): no test covers it"]


def test_self_the_startup_validation_test_does_not_count_as_coverage():
    settings_source, app_sources, test_sources = repository_sources()
    assert "tests/foundation/test_settings.py" not in test_sources
    assert "tests/foundation/test_settings_coverage.py" not in test_sources
    assert [path for path in SETTINGS_FILES if path in app_sources] == []
    assert not any("/migrations/" in path for path in app_sources)


def test_self_a_read_and_tested_setting_passes():
    app = {**READS_BAR, "trading/foo.py": "from django.conf import settings\nY = settings.FOO\n"}
    tests = {**TESTS_BAR, "tests/test_foo.py": "ENV = {'FOO': '3'}\n"}
    assert _audit(SYNTHETIC, app=app, tests=tests) == []


def test_self_a_dynamic_prefix_read_counts_as_a_read():
    source = SYNTHETIC.replace('"FOO"', '"PFX_POLL_MS"').replace("FOO =", "PFX_POLL_MS =")
    app = {
        **READS_BAR,
        "torghut_site/k.py": (
            "from django.conf import settings\n"
            "def cfg(prefix):\n    return getattr(settings, f'{prefix}_POLL_MS')\n"
        ),
        "trading/c.py": "from torghut_site.k import cfg\nZ = cfg('PFX')\n",
    }
    tests = {**TESTS_BAR, "tests/test_p.py": "X = 'PFX_POLL_MS'\n"}
    assert _audit(source, app=app, tests=tests) == []


def test_self_a_prefix_handed_on_to_a_dynamic_read_counts_as_a_read():
    source = SYNTHETIC.replace('"FOO"', '"PFX_POLL_MS"').replace("FOO =", "PFX_POLL_MS =")
    app = {
        **READS_BAR,
        "torghut_site/k.py": (
            "from django.conf import settings\n"
            "def cfg(prefix):\n    return getattr(settings, f'{prefix}_POLL_MS')\n"
            "def build(prefix, handler):\n    return (cfg(prefix), handler)\n"
        ),
        "trading/c.py": "from torghut_site.k import build\nZ = build('PFX', None)\n",
    }
    tests = {**TESTS_BAR, "tests/test_p.py": "X = 'PFX_POLL_MS'\n"}
    assert _audit(source, app=app, tests=tests) == []
    app["trading/c.py"] = "from torghut_site.k import build\nZ = build('OTHER', None)\n"
    assert _audit(source, app=app, tests=tests) == ["PFX_POLL_MS (PFX_POLL_MS): nothing reads it"]


def test_self_a_private_variable_needs_a_derived_entry_that_holds():
    source = SYNTHETIC + '_raw = env.str("RAW")\nBUILT = {"x": _raw}\nOTHER = 1\n'
    app = {**READS_BAR, "trading/b.py": "from django.conf import settings\nY = settings.BUILT\n"}
    tests = {**TESTS_BAR, "tests/test_raw.py": "ENV = {'RAW': 'x', 'FOO': '1'}\n"}
    app["trading/foo.py"] = "from django.conf import settings\nY = settings.FOO\n"
    assert _audit(source, app=app, tests=tests) == [
        "RAW: read into private _raw; add it to DERIVED"
    ]
    assert _audit(source, app=app, tests=tests, derived={"RAW": "BUILT"}) == []
    assert _audit(source, app=app, tests=tests, derived={"RAW": "OTHER"}) == [
        "DERIVED says OTHER consumes RAW, but OTHER is not built from _raw",
        "RAW (OTHER): nothing reads it",
    ]
    assert _audit(source, app=app, tests=tests, derived={"RAW": "BUILT", "GONE": "BUILT"}) == [
        "DERIVED names GONE, which settings.py does not read"
    ]


def test_self_a_framework_setting_needs_no_app_reader_but_a_test():
    assert _audit(SYNTHETIC, framework={"FOO": "Django"}) == ["FOO (FOO): no test covers it"]


def test_self_a_flag_read_as_a_plain_setting_is_not_flippable():
    flags = {"torghut_bar": "BAR"}
    assert _audit(
        SYNTHETIC.replace("FOO", "BAR2"),
        flags=flags,
        tests={
            "tests/test_bar.py": "def test_bar(settings):\n    settings.BAR = settings.BAR2 = 2\n"
        },
        app={
            "trading/bar.py": "from django.conf import settings\nX = settings.BAR + settings.BAR2\n"
        },
    ) == ["torghut_bar (BAR): not read through flag_enabled(), so flipping it changes nothing"]
    app = {
        "trading/bar.py": "from torghut_site.flags import flag_enabled\nX = flag_enabled('BAR')\n"
    }
    assert _audit("BAR = env.bool('BAR')\n", flags=flags, app=app) == []


def test_self_a_flag_for_a_setting_that_does_not_exist_fails():
    app = {
        "trading/x.py": "from torghut_site.flags import flag_enabled\nX = flag_enabled('GONE')\n"
    }
    tests = {"tests/test_x.py": "X = 'GONE'\n"}
    assert _audit("", flags={"torghut_gone": "GONE"}, app=app, tests=tests) == [
        "torghut_gone (GONE): settings.py defines no such setting"
    ]


def test_self_the_flag_table_itself_is_not_a_read():
    flags = {"torghut_bar": "BAR"}
    app = {FLAGS_FILE: "FLAG_SETTINGS = {'torghut_bar': 'BAR'}\nONE_WAY_FLAGS = {'BAR'}\n"}
    assert _audit("BAR = env.bool('BAR')\n", flags=flags, app=app) == [
        "BAR (BAR): nothing reads it",
        "torghut_bar (BAR): not read through flag_enabled(), so flipping it changes nothing",
    ]


def test_self_in_progress_exempts_and_must_name_something_real():
    assert _audit(SYNTHETIC, in_progress=frozenset({"FOO"})) == []
    assert _audit(SYNTHETIC, in_progress=frozenset({"FOO", "FOOO"})) == [
        "IN_PROGRESS names FOOO, which is neither a setting nor a flag"
    ]


@pytest.mark.parametrize(
    "template",
    [
        'def sec(prefix):\n    return {"p": env.str(f"{prefix}_PASSWORD")}\nK = sec("FOO")\n',
        '_x = env.bool("FOO_PASSWORD")\nif env.bool("FOO_PASSWORD"):\n    pass\n',
    ],
)
def test_self_helper_and_private_reads_are_enumerated(template):
    model = settings_model(template)
    assert "FOO_PASSWORD" in model.env_to_attr


def test_self_a_helper_read_unpacked_into_variables_maps_each_name_to_its_variable():
    source = (
        "def consumer(prefix):\n"
        '    return env.str(f"{prefix}_TOPIC"), env.int(f"{prefix}_POLL_MS", default=1)\n'
        'BAR = env.int("BAR", default=1)\n'
        '(P_TOPIC, P_POLL_MS) = consumer("P")\n'
    )
    app = {**READS_BAR, "trading/p.py": "from django.conf import settings\nY = settings.P_TOPIC\n"}
    tests = {**TESTS_BAR, "tests/test_p.py": "X = ('P_TOPIC', 'P_POLL_MS')\n"}
    assert settings_model(source).env_to_attr == {
        "BAR": "BAR",
        "P_TOPIC": "P_TOPIC",
        "P_POLL_MS": "P_POLL_MS",
    }
    assert _audit(source, app=app, tests=tests) == ["P_POLL_MS (P_POLL_MS): nothing reads it"]
    # a name read into a tuple that holds no variable of that name is not silently accepted
    assert _audit(
        source.replace("(P_TOPIC, P_POLL_MS)", "(P_TOPIC, P_POLL)"), app=app, tests=tests
    ) == ["P_POLL_MS: read outside an assignment in settings.py; add it to DERIVED"]
