"""Loading `params.yaml`: the base keys, the selected profile's overlay merged on top, validated once.

Profiles overlay only the sections in `PROFILE_SECTIONS`, and every profile names each of them (`{}` when
it changes nothing): `dvc.yaml` tracks `profiles.<profile>.<section>` per stage, so a stage reruns only for
the sections it reads, and only for the active profile.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from training.errors import GeofmError
from training.lookup import unknown_key_message
from training.settings.local_paths import local_path_problem
from training.settings.schema import Settings

PROFILE_SECTIONS = ("data", "model", "train")


class SettingsError(GeofmError, ValueError):
    """`params.yaml` (or a value given for it) cannot be used; the message names the key path."""


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `overlay` merged in; nested mappings merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_profiles(profiles: Any, source: str) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(profiles, Mapping):
        raise SettingsError(f"{source}: profiles: expected a mapping of profile names, got {profiles!r}")
    for name, overlay in profiles.items():
        if not isinstance(overlay, Mapping):
            raise SettingsError(f"{source}: profiles.{name}: expected a mapping, got {overlay!r}")
        for section in overlay:
            if section not in PROFILE_SECTIONS:
                raise SettingsError(f"{source}: profiles.{name}: a profile may overlay "
                                    f"{', '.join(PROFILE_SECTIONS)}, not {section!r}")
        missing = [section for section in PROFILE_SECTIONS if not isinstance(overlay.get(section), Mapping)]
        if missing:
            raise SettingsError(f"{source}: profiles.{name}.{missing[0]}: missing; every profile names "
                                f"{', '.join(PROFILE_SECTIONS)} (`{missing[0]}: {{}}` when unchanged), as "
                                "dvc.yaml tracks each")
    return profiles


def resolve_profile(raw: Mapping[str, Any], profile: str | None = None,
                    source: str = "params") -> dict[str, Any]:
    """The effective mapping: `raw` without its `profiles` table, overlaid with one profile."""
    profiles = _check_profiles(raw.get("profiles", {}), source)
    name = profile or raw.get("profile")
    base = {key: value for key, value in raw.items() if key != "profiles"}
    if name is None:
        return base
    if name not in profiles:
        raise SettingsError(f"{source}: profile: {unknown_key_message('profile', name, profiles)}")
    merged = deep_merge(base, profiles[name])
    merged["profile"] = name
    return merged


def _key_path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        if part == "[key]":  # pydantic's marker for a mapping key: the key itself is already named
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(error: ValidationError, source: str) -> str:
    """Each problem as `key.path: what is wrong, got value`, one per line after the first."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        got = "" if problem["type"] in ("missing", "value_error") else f", got {problem['input']!r}"
        if problem["type"] == "extra_forbidden":
            message, got = "not a known setting (check its spelling and section)", ""
        path = _key_path(problem["loc"])
        lines.append(f"{path}: {message}{got}" if path else f"{message}{got}")
    return f"{source}: " + "; ".join(lines)


def settings_from_mapping(raw: Mapping[str, Any], profile: str | None = None,
                          source: str = "params") -> Settings:
    """Validated settings from a parsed params mapping (with its `profiles` table) and a profile."""
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Settings.model_validate(resolve_profile(raw, profile, source))
    except ValidationError as error:
        raise SettingsError(_message(error, source)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping (YAML would keep the second "
                    "silently): keep one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The parsed YAML of `path`; a missing or empty file, a key given twice or a syntax error names the
    file (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"params file not found: {path}")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
        if raw is None:
            raise SettingsError(f"{path}: the file is empty, so nothing is configured: copy the "
                                "repository's params.yaml and edit it (docs/configuration.md)")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SettingsError(f"{path}:{where}: not valid YAML ({problem})") from None
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return dict(raw)


def load_settings(path: str | Path = "params.yaml", profile: str | None = None) -> Settings:
    """The settings of `path` under `profile` (default: the file's own `profile` key), with the paths they
    name on this machine checked (relative to the file's folder, the project root)."""
    settings = settings_from_mapping(read_params_file(path), profile, source=str(path))
    problem = local_path_problem(settings, Path(path).resolve().parent)
    if problem is not None:
        raise SettingsError(f"{path}: {problem}")
    return settings
