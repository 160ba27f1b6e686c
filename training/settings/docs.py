"""The configuration reference (one markdown table row per setting), generated from the settings classes
so docs/configuration.md cannot drift from the code: `python -m training.settings.docs` prints it."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from training.settings.schema import Settings

_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _type_name(annotation: object) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    arguments = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (tuple, list) and arguments:
        names = [_type_name(a) for a in arguments if a is not Ellipsis]
        return f"list of {names[0]}" if Ellipsis in arguments else f"[{', '.join(names)}]"
    if origin is dict:
        return f"mapping {_type_name(arguments[0])} -> {_type_name(arguments[1])}"
    if arguments:
        return " or ".join(_type_name(a) for a in arguments)
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    return ", ".join(f"{symbol} {getattr(item, name)}" for item in info.metadata
                     for name, symbol in _BOUNDS.items() if getattr(item, name, None) is not None)


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value)}`"


def _rows(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _rows(annotation, f"{key}.")
            continue
        allowed = " ".join(part for part in (_type_name(annotation), _bounds(info)) if part)
        yield f"| `{key}` | {allowed} | {_default(info)} | {info.description or ''} |"


def settings_reference() -> str:
    """The markdown table of every setting: key, type and allowed values, default, meaning."""
    header = ["| key | type, allowed values | default | meaning |", "| --- | --- | --- | --- |"]
    return "\n".join(header + list(_rows(Settings))) + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
