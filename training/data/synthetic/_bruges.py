"""bruges, imported where setuptools no longer ships `pkg_resources`.

bruges 0.5.4 reads its own version through `pkg_resources.get_distribution` on import; setuptools 81+
dropped that module. For the import only, a stand-in answers from `importlib.metadata`, then is removed
so that no other library sees it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import types


def _import_bruges() -> types.ModuleType:
    if importlib.util.find_spec("pkg_resources") is not None:
        return importlib.import_module("bruges")
    stand_in = types.ModuleType("pkg_resources")
    stand_in.DistributionNotFound = importlib.metadata.PackageNotFoundError
    stand_in.get_distribution = lambda name: types.SimpleNamespace(version=importlib.metadata.version(name))
    sys.modules["pkg_resources"] = stand_in
    try:
        return importlib.import_module("bruges")
    finally:
        del sys.modules["pkg_resources"]


bruges = _import_bruges()
