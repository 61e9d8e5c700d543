"""Typed environment readers for settings.

Every reader records a problem instead of raising at once, so that a misconfigured process
reports *all* bad variables in one message and then refuses to start. Each message names the
variable, the value it got and what it accepts. `<NAME>_FILE` is honoured for secrets
(Kubernetes/Docker secrets mounted as files).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

# builtins under other names: Env has methods called str/int/float/bool
Str: TypeAlias = str
Int: TypeAlias = int
Float: TypeAlias = float
Bool: TypeAlias = bool

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


class ConfigError(ImproperlyConfigured):
    """Raised once, with every configuration problem found, before the process starts work."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"torghut cannot start: invalid configuration\n{lines}"


def load_dotenv(path: Path, environ: dict[str, str] | None = None) -> None:
    """Load KEY=VALUE lines from `path` without overriding variables already set."""
    target = os.environ if environ is None else environ
    if not path.is_file():
        return
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        target.setdefault(key, value)


def _finite_decimal(value: Any) -> Decimal | None:
    """A JSON number or numeric text as a finite Decimal; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class Env:
    def __init__(self, environ: Mapping[Str, Str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.problems: list[Str] = []

    # -- raw access ---------------------------------------------------------------------------
    def raw(self, *names: Str) -> tuple[Str, Str] | None:
        """First set variable among `names` (aliases), as (name, value)."""
        for name in names:
            value = self._environ.get(name)
            if value is not None and value.strip() != "":
                return name, value.strip()
        return None

    def is_set(self, *names: Str) -> Bool:
        return self.raw(*names) is not None

    def problem(self, message: Str) -> None:
        self.problems.append(message)

    def _parse(
        self,
        names: tuple[Str, ...],
        default: T,
        parse: Callable[[Str], T],
        what: Str,
        *,
        echo: Bool = True,
    ) -> T:
        """`echo=False` for values that may carry credentials: the message then says where the
        value is broken instead of quoting it."""
        found = self.raw(*names)
        if found is None:
            return default
        name, value = found
        try:
            return parse(value)
        except (ValueError, InvalidOperation, TypeError, json.JSONDecodeError) as exc:
            if echo:
                self.problem(f"{name}={value!r} is not {what}")
            elif isinstance(exc, json.JSONDecodeError):
                self.problem(
                    f"{name} is not {what} (line {exc.lineno} column {exc.colno}: {exc.msg}; "
                    "the value is not shown, it may hold credentials)"
                )
            else:
                self.problem(f"{name} is not {what} (the value is not shown)")
            return default

    # -- typed readers -----------------------------------------------------------------------
    def str(self, *names: Str, default: Str = "") -> Str:
        found = self.raw(*names)
        return default if found is None else found[1]

    def optional_str(self, *names: Str) -> Str | None:
        found = self.raw(*names)
        return None if found is None else found[1]

    def secret(self, *names: Str, default: Str = "") -> Str:
        """Like `str`, but also reads `<NAME>_FILE` (first line of the file)."""
        found = self.raw(*names)
        if found is not None:
            return found[1]
        for name in names:
            file_found = self.raw(f"{name}_FILE")
            if file_found is None:
                continue
            try:
                return Path(file_found[1]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problem(f"{file_found[0]}={file_found[1]!r} cannot be read: {exc.strerror}")
        return default

    def bool(self, *names: Str, default: Bool = False) -> Bool:
        def parse(value: Str) -> Bool:
            lowered = value.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(value)

        return self._parse(names, default, parse, "a boolean (true/false, 1/0, yes/no, on/off)")

    def int(
        self, *names: Str, default: Int, min_value: Int | None = None, max_value: Int | None = None
    ) -> Int:
        value = self._parse(names, default, Int, "an integer")
        return Int(self._bounded(names, value, default, min_value, max_value))

    def optional_int(self, *names: Str, min_value: Int | None = None) -> Int | None:
        if not self.is_set(*names):
            return None
        return self.int(*names, default=0, min_value=min_value)

    def float(
        self,
        *names: Str,
        default: Float,
        min_value: Float | None = None,
        max_value: Float | None = None,
    ) -> Float:
        def parse(value: Str) -> Float:
            parsed = float(value)
            if parsed != parsed or parsed in (float("inf"), float("-inf")):
                raise ValueError(value)
            return parsed

        value = self._parse(names, default, parse, "a finite number")
        return Float(self._bounded(names, value, default, min_value, max_value))

    def decimal(
        self, *names: Str, default: Decimal | None = None, min_value: Decimal | None = None
    ) -> Decimal | None:
        def parse(value: Str) -> Decimal:
            parsed = Decimal(value)
            if not parsed.is_finite():
                raise ValueError(value)
            return parsed

        value = self._parse(names, default, parse, "a decimal number")
        if value is not None and min_value is not None and value < min_value:
            name = self._name(names)
            self.problem(f"{name}={value} must be >= {min_value}")
            return default
        return value

    def choice(self, *names: Str, choices: Iterable[Str], default: Str) -> Str:
        allowed = list(choices)
        found = self.raw(*names)
        if found is None:
            return default
        name, value = found
        normalized = value.lower()
        if normalized not in allowed:
            self.problem(f"{name}={value!r} must be one of: {', '.join(allowed)}")
            return default
        return normalized

    def csv(self, *names: Str, default: Iterable[Str] = ()) -> list[Str]:
        found = self.raw(*names)
        if found is None:
            return list(default)
        return [item.strip() for item in found[1].split(",") if item.strip()]

    def json(self, *names: Str, default: Any = None) -> Any:
        # JSON settings carry credentials (TRADING_ACCOUNTS_JSON holds each lane's Alpaca keys)
        return self._parse(names, default, json.loads, "valid JSON", echo=False)

    def decimal_map(self, *names: Str, min_value: Decimal = Decimal(0)) -> dict[Str, Decimal]:
        """A JSON object of name -> decimal number (a number or numeric text), e.g. a notional
        cap per symbol; `{}` when unset. Each bad entry is a problem naming the variable."""
        raw: Any = self._parse(names, {}, json.loads, "valid JSON (an object of name -> number)")
        name = self._name(names)
        if not isinstance(raw, dict):
            self.problem(f"{name} must be a JSON object of name -> number")
            return {}
        out: dict[Str, Decimal] = {}
        for key, value in raw.items():
            number = _finite_decimal(value)
            if number is None:
                self.problem(f"{name}[{key!r}]={json.dumps(value)} is not a decimal number")
                continue
            if number < min_value:
                self.problem(f"{name}[{key!r}]={number} must be >= {min_value}")
                continue
            out[key] = number
        return out

    def str_map(self, *names: Str) -> dict[Str, Str]:
        """A JSON object of name -> non-empty text; `{}` when unset."""
        raw: Any = self._parse(names, {}, json.loads, "valid JSON (an object of name -> text)")
        name = self._name(names)
        if not isinstance(raw, dict):
            self.problem(f"{name} must be a JSON object of name -> text")
            return {}
        out: dict[Str, Str] = {}
        for key, value in raw.items():
            if not isinstance(value, Str) or not value.strip():
                self.problem(f"{name}[{key!r}]={json.dumps(value)} must be a non-empty string")
                continue
            out[key] = value.strip()
        return out

    # -- helpers ------------------------------------------------------------------------------
    def _name(self, names: tuple[Str, ...]) -> Str:
        found = self.raw(*names)
        return found[0] if found else names[0]

    def _bounded(
        self,
        names: tuple[Str, ...],
        value: Any,
        default: Any,
        min_value: Any,
        max_value: Any,
    ) -> Any:
        if not self.is_set(*names):
            return value
        name = self._name(names)
        if min_value is not None and value < min_value:
            self.problem(f"{name}={value} must be >= {min_value}")
            return default
        if max_value is not None and value > max_value:
            self.problem(f"{name}={value} must be <= {max_value}")
            return default
        return value

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)
