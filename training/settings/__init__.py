"""geofm's settings: `load_settings(path, profile)` reads `params.yaml` into typed, validated sections."""

from training.settings.loading import PROFILE_SECTIONS, SettingsError, load_settings, settings_from_mapping
from training.settings.paths import ProjectPaths
from training.settings.project import Project
from training.settings.schema import (
    DataSettings,
    MlflowSettings,
    ModelSettings,
    OutputSettings,
    Settings,
    TrainSettings,
)

__all__ = [
    "PROFILE_SECTIONS",
    "DataSettings",
    "MlflowSettings",
    "ModelSettings",
    "OutputSettings",
    "Project",
    "ProjectPaths",
    "Settings",
    "SettingsError",
    "TrainSettings",
    "load_settings",
    "settings_from_mapping",
]
