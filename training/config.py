"""Reading `params.yaml`: the base keys with the selected profile's overlay merged on top."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `overlay` merged in; nested mappings merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_profile(raw: Mapping[str, Any], profile: str | None = None) -> dict[str, Any]:
    """The effective parameters: `raw` without its `profiles` table, overlaid with one profile."""
    profiles = raw.get("profiles", {})
    name = profile or raw.get("profile")
    base = {key: value for key, value in raw.items() if key != "profiles"}
    if name is None:
        return base
    if name not in profiles:
        raise KeyError(f"params: profile {name!r} is not defined; defined profiles: {', '.join(profiles)}")
    merged = deep_merge(base, profiles[name])
    merged["profile"] = name
    return merged


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """Load `path` and resolve its profile (the file's `profile` key unless `profile` is given)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    with path.open() as handle:
        raw = yaml.safe_load(handle) or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return resolve_profile(raw, profile)
