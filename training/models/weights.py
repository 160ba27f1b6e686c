"""Where the encoder's weights come from: the timm hub tag, a local file, a state dict, or a random
initialisation.

`create_vit(encoder, weights)` takes `weights` = "hub", "none", a path to a .pth/.pt/.safetensors file or
a state dict, holding the official layout (DINOv2's `dinov2_vits14_pretrain.pth`: `mask_token`, a 37x37+1
`pos_embed`, ...; DINOv3's: `storage_tokens`, `rope_embed.periods`, `ls1.gamma`, ...) or a timm one.
A DINOv2 ViT comes at its pretrained 37 x 37 grid (position embeddings of another grid are resampled to it
by timm; DINOv3's are rotary, computed per grid); `patch_grid.vit_for_grid` then fixes it to a task's grid.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import timm
import torch
from timm.models import eva, load_state_dict, vision_transformer
from torch import nn

from training.encoders import encoder_spec
from training.errors import GeofmError

_SHOWN_KEYS = 5
logger = logging.getLogger("geofm")


class WeightLoadError(GeofmError, RuntimeError):
    """A weight source that cannot give the encoder its weights (offline hub, unreadable or foreign file)."""


def _create(encoder: str, pretrained: bool) -> nn.Module:
    return timm.create_model(encoder, pretrained=pretrained, dynamic_img_size=True, num_classes=0)


def _from_hub(encoder: str) -> nn.Module:
    try:
        return _create(encoder, pretrained=True)
    except Exception as error:  # the hub raises many kinds (OSError, HTTP and offline-mode errors)
        raise WeightLoadError(
            f"could not fetch the pretrained weights of {encoder!r} from the Hugging Face hub ({error}); "
            "offline, set model.weights to a local file such as dinov2_vits14_pretrain.pth, or to 'none' "
            "for a random initialisation"
        ) from error


def random_encoder_notice(encoder: str) -> str:
    """In plain words: the `encoder` is randomly initialised (`model.weights: none`)."""
    return (f"model.weights is 'none': the {encoder} encoder is randomly initialised, not pretrained, "
            "so the ViT scores do not reflect the foundation model")


@functools.cache
def _log_random_encoder(encoder: str) -> None:
    """Logged once per encoder and process (to the `geofm` logger), however many models are built."""
    logger.warning(random_encoder_notice(encoder))


def _random_init(encoder: str) -> nn.Module:
    _log_random_encoder(encoder)
    return _create(encoder, pretrained=False)


_KEYWORD_SOURCES: dict[str, Callable[[str], nn.Module]] = {"hub": _from_hub, "none": _random_init}


def _dinov2_filter(state: dict[str, torch.Tensor], vit: nn.Module) -> dict[str, torch.Tensor]:
    """The official DINOv2 layout to timm's; with registers, the class token's position embedding is folded
    into the class token (timm embeds no prefix token), as the official forward adds it before the
    registers join."""
    pos_embed = state.get("pos_embed")
    if vit.no_embed_class and pos_embed is not None and pos_embed.shape[1] == vit.pos_embed.shape[1] + 1:
        state = {**state, "cls_token": state["cls_token"] + pos_embed[:, :1], "pos_embed": pos_embed[:, 1:]}
    return vision_transformer.checkpoint_filter_fn(state, vit)


# timm's converters from each family's official checkpoint layout to its own.
_CHECKPOINT_FILTERS: dict[str, Callable[[dict, nn.Module], dict]] = {
    "dinov2": _dinov2_filter,
    "dinov3": eva.checkpoint_filter_fn,
}


def _first(keys: set[str]) -> str:
    return ", ".join(sorted(keys)[:_SHOWN_KEYS])


def load_encoder_state(vit: nn.Module, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """Loads a state dict (official or timm layout) into `vit`; mismatched keys or shapes raise naming
    `origin` (for example "encoder weight file /path/x.pth") and the first bad keys."""
    state = _CHECKPOINT_FILTERS[encoder_spec(vit.pretrained_cfg["architecture"]).family](dict(state), vit)
    expected = vit.state_dict()
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        raise WeightLoadError(
            f"{origin} does not fit {type(vit).__name__}: "
            f"missing keys [{_first(missing)}] ({len(missing)} in all), "
            f"unexpected keys [{_first(unexpected)}] ({len(unexpected)} in all)"
        )
    wrong_shapes = {key for key, value in state.items() if value.shape != expected[key].shape}
    if wrong_shapes:
        key = sorted(wrong_shapes)[0]
        raise WeightLoadError(
            f"{origin} has {len(wrong_shapes)} tensors of the wrong shape, first "
            f"{key}: {tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} in the model"
        )
    with torch.no_grad():
        vit.load_state_dict(state, strict=True)


def load_encoder_file(vit: nn.Module, path: Path) -> None:
    """Loads a checkpoint file into `vit`; an unreadable file or mismatched keys raise naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"encoder weight file {path} does not exist")
    try:
        raw = load_state_dict(str(path), use_ema=False)
    except Exception as error:
        raise WeightLoadError(f"cannot read encoder weight file {path}: {error}") from error
    load_encoder_state(vit, raw, f"encoder weight file {path}")


def create_vit(encoder: str, weights: str | Path | Mapping[str, torch.Tensor]) -> tuple[nn.Module, str]:
    """The timm ViT `encoder` (at its pretrained grid) with its weights, and a description of their source
    for the run's params ("hub", "none", "file:<path>" or "state dict")."""
    encoder_spec(encoder)  # an unknown or refused encoder fails here, before any weight is read
    if isinstance(weights, Mapping):
        vit = _create(encoder, pretrained=False)
        load_encoder_state(vit, weights, "encoder state dict")
        return vit, "state dict"
    source = _KEYWORD_SOURCES.get(str(weights))
    if source is not None:
        return source(encoder), str(weights)
    path = Path(weights).expanduser().resolve()
    vit = _create(encoder, pretrained=False)
    load_encoder_file(vit, path)
    return vit, f"file:{path}"
