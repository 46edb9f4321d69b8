"""Loading declarative configuration: YAML files into pydantic models, with errors for people.

The one YAML loader of gee_fusion. A validation error becomes a
:class:`~gee_fusion.errors.ConfigError` that names the file, each bad key (as a dotted path),
what was given and what is allowed, without pydantic's own text and links.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gee_fusion.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: str | Path, *, what: str = "config") -> dict[str, Any]:
    """The mapping at the top of a YAML file.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML, empty, or not a mapping.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Cannot read {what} {path}: no such file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {what} {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ConfigError(
            f"{path} is empty: write the settings of the {what} in it (see the examples in the "
            "repository's configs), or leave the option out to use the defaults."
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path} must hold a mapping of {what} settings (key: value), not a {type(raw).__name__}."
        )
    return raw


def validate(model: type[M], data: Mapping[str, Any], *, source: str | Path) -> M:
    """Validate ``data`` as ``model``; errors name ``source`` (a file, or e.g. ``file: patches``).

    Raises:
        ConfigError: every problem, one line each.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [describe_error(model, err) for err in exc.errors(include_url=False)]
        raise ConfigError(
            f"Invalid settings in {source}:\n" + "\n".join(f"  - {line}" for line in lines)
        ) from exc


def load_yaml(path: str | Path, model: type[M], *, section: str | None = None, what: str = "config") -> M:
    """Read a YAML file (or one top-level ``section`` of it) into ``model``.

    Raises:
        ConfigError: unreadable or empty file, missing section, or invalid settings.
    """
    raw = read_yaml_mapping(path, what=what)
    source: str | Path = path
    if section is not None:
        if section not in raw:
            raise ConfigError(f"{path} has no `{section}` section.")
        raw = raw[section] if raw[section] is not None else {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: `{section}` must be a mapping of settings (use {{}} for defaults).")
        source = f"{path} (section `{section}`)"
    return validate(model, raw, source=source)


def describe_error(model: type[BaseModel], err: Mapping[str, Any]) -> str:
    """One pydantic error as ``key: problem (given: ...)``, with the allowed keys or values."""
    loc = ".".join(str(part) for part in err.get("loc", ())) or "(top level)"
    kind = str(err.get("type", ""))
    given = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, tuple(err.get("loc", ()))[:-1])
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"{loc}: unknown key{hint}"
    if kind == "missing":
        return f"{loc}: required, but missing"
    message = str(err.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return f"{loc}: {message} (given: {given!r})"


def _allowed_keys(model: type[BaseModel], parents: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at ``parents``, where it can be followed."""
    current: Any = model
    for part in parents:
        fields = getattr(current, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []
