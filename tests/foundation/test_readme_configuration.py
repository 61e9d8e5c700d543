"""README's configuration table lists every environment variable the settings package reads, and
names no variable that nothing reads.

The set of names read comes from `test_settings_coverage.py`'s enumeration (the
`env.<helper>("NAME", ...)` calls of `torghut_site/settings/`, including the f-string names of
helpers such as `kafka_consumer(prefix, ...)`), so the two tests agree on what "a variable the code
reads" is.

The table is the one under `## Configuration` (up to its next heading). A row's first cell lists
its variables, each in backticks, separated by ` / ` or inside `(+ ...)`:
- a full name, `TRADING_POLL_MS`;
- a suffix, `_RECONCILE_MS`, standing for a full name of the same cell shortened at an underscore
  plus the suffix (`TRADING_ORDER_FEED_TOPIC` / `_TOPIC_V2` names
  `TRADING_ORDER_FEED_TOPIC_V2`; `TRADING_DRIFT_MAX_REQUIRED_NULL_RATE` / `_MAX_DUPLICATE_RATIO`
  names `TRADING_DRIFT_MAX_DUPLICATE_RATIO`).
Wildcards (`TRADING_PORTFOLIO_*`) are refused: the table spells every name out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tests.conftest import ROOT
from tests.foundation.test_settings_coverage import repository_sources, settings_model

README = ROOT / "README.md"
_CODE = re.compile(r"`([^`]*)`")
_FULL = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_SUFFIX = re.compile(r"(?:_[A-Z0-9]+)+")

# variables the table documents that the settings package does not read: read by a library or a
# script (name -> where); the settings package reads every one today
READ_ELSEWHERE: dict[str, str] = {}


def configuration_table(readme: str) -> list[str]:
    """The first cells of the rows of the table under `## Configuration`."""
    section = readme.split("\n## Configuration\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]
    cells = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| variable", "| ---")):
            continue
        cells.append(line.split(" | ", 1)[0].removeprefix("| "))
    return cells


def table_names(cells: Iterable[str]) -> tuple[set[str], list[str]]:
    """(the variable names the cells list, problems: tokens that are neither a name nor a
    suffix of one, wildcards)."""
    names: set[str] = set()
    problems: list[str] = []
    for cell in cells:
        tokens = _CODE.findall(cell)
        full = [t for t in tokens if _FULL.fullmatch(t)]
        for token in tokens:
            if token in full:
                names.add(token)
            elif _SUFFIX.fullmatch(token) and full:
                for base in full:
                    parts = base.split("_")
                    names.update("_".join(parts[:i]) + token for i in range(1, len(parts) + 1))
            else:
                problems.append(f"{cell!r}: {token!r} is not a variable name or a suffix of one")
    return names, problems


def settings_env_names() -> set[str]:
    settings_source, _, _ = repository_sources()
    return set(settings_model(settings_source).env_to_attr)


def audit(readme: str, env_names: set[str]) -> list[str]:
    cells = configuration_table(readme)
    listed, problems = table_names(cells)
    problems += [
        f"{n}: read by the settings but not in README's table" for n in sorted(env_names - listed)
    ]
    # a suffix expands to every shortening of its base, so only full names can be stale
    full = {t for cell in cells for t in _CODE.findall(cell) if _FULL.fullmatch(t)}
    problems += [
        f"{n}: in README's table but nothing reads it"
        for n in sorted(full - env_names - set(READ_ELSEWHERE))
    ]
    return problems


def test_readme_configuration_table_lists_every_variable_the_settings_read():
    assert audit(README.read_text(encoding="utf-8"), settings_env_names()) == []


# -- self-tests on a synthetic README ---------------------------------------------------------
SYNTHETIC = """intro
## Configuration

| variable | default | meaning |
| --- | --- | --- |
| `FOO_POLL_MS` / `_BATCH_SIZE` | 1 / 2 | foo |
| `BAR_TOPIC` / `_TOPIC_V2` (+ `_SASL_USERNAME`) | – | bar |
| `BAZ` | – | mentions `QUX` in the meaning column |

### Feature flags

| `AFTER` | – | another table |
"""


def test_self_suffixes_expand_and_only_the_first_cell_counts():
    listed, problems = table_names(configuration_table(SYNTHETIC))
    assert problems == []
    assert {"FOO_POLL_MS", "FOO_BATCH_SIZE", "BAR_TOPIC", "BAR_TOPIC_V2", "BAZ"} <= listed
    assert "BAR_SASL_USERNAME" in listed
    assert "QUX" not in listed
    assert "AFTER" not in listed


def test_self_a_variable_missing_from_the_table_fails():
    names = {"FOO_POLL_MS", "FOO_BATCH_SIZE", "BAR_TOPIC", "BAR_TOPIC_V2", "BAR_SASL_USERNAME"}
    assert audit(SYNTHETIC, names | {"BAZ"}) == []
    assert audit(SYNTHETIC, names | {"BAZ", "QUX"}) == [
        "QUX: read by the settings but not in README's table"
    ]


def test_self_a_stale_name_in_the_table_fails():
    names = {"FOO_POLL_MS", "FOO_BATCH_SIZE", "BAR_TOPIC", "BAR_TOPIC_V2", "BAR_SASL_USERNAME"}
    assert audit(SYNTHETIC, names) == ["BAZ: in README's table but nothing reads it"]


def test_self_a_wildcard_is_refused():
    readme = SYNTHETIC.replace("`BAZ`", "`BAZ_*`")
    _, problems = table_names(configuration_table(readme))
    assert problems == ["'`BAZ_*`': 'BAZ_*' is not a variable name or a suffix of one"]
