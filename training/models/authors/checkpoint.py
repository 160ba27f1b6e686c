"""Build the geofm model whose logits equal the authors' forward, from state dicts their script saved."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from training.errors import UnknownKeyError
from training.lookup import unknown_key_message
from training.models import NETWORKS, build_model
from training.models.authors.names import authors_key
from training.models.segmenter import RawSectionModel
from training.models.weights import WeightLoadError
from training.tasks import TaskSpec

ENCODER_PREFIX = "encoder."
# loralib's factors: lora_A (r, in) and lora_B (out, r), the update (B A) * alpha / r.
LORA_KEY = re.compile(r"encoder\.blocks\.(\d+)\.attn\.(qkv|proj)\.lora_(A|B)")
# loralib's default alpha, the authors' (their layers set only r = 8).
AUTHORS_LORA_ALPHA = 1.0
_PEFT_FACTOR = re.compile(r"encoder\.vit\.model\.(blocks\.\d+\.attn\.(?:qkv|proj)\.lora_[AB])"
                          r"\.default\.weight")
_SHOWN_KEYS = 5


class AuthorsCheckpointError(WeightLoadError):
    """A file that is not a state dict the authors' code writes for the asked network and task."""


def _first(keys: set[str]) -> str:
    return ", ".join(sorted(keys)[:_SHOWN_KEYS])


def _read(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"authors' checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]  # torch's first line
        raise AuthorsCheckpointError(f"cannot read authors' checkpoint {path}: {reason}") from error
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AuthorsCheckpointError(f"authors' checkpoint {path} is not a state dict (names -> tensors)")
    return dict(state)


def _check_keys(path: Path, found: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """`found` (the file's keys) must be exactly `expected` (authors' names -> geofm tensors), same shapes."""
    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing or unexpected:
        raise AuthorsCheckpointError(
            f"authors' checkpoint {path} does not fit the asked model: missing keys [{_first(missing)}] "
            f"({len(missing)} in all), unexpected keys [{_first(unexpected)}] ({len(unexpected)} in all)")
    wrong = {key for key, value in found.items() if value.shape != expected[key].shape}
    if wrong:
        key = sorted(wrong)[0]
        raise AuthorsCheckpointError(
            f"authors' checkpoint {path} has {len(wrong)} tensors of the wrong shape, first {key}: "
            f"{tuple(found[key].shape)} in the file, {tuple(expected[key].shape)} in the model")


def _lora_factors(state: dict[str, torch.Tensor], lora_path: Path | None) -> dict[str, torch.Tensor]:
    """The LoRA factors: those of the checkpoint, replaced by the second file's (as the authors load them)."""
    factors = {key: state.pop(key) for key in [k for k in state if LORA_KEY.fullmatch(k)]}
    if lora_path is not None:
        extra = _read(lora_path)
        foreign = {key for key in extra if not LORA_KEY.fullmatch(key)}
        if foreign:
            raise AuthorsCheckpointError(f"LoRA file {lora_path} holds keys that are not loralib factors of "
                                         f"the encoder's qkv/proj: [{_first(foreign)}]")
        factors.update(extra)
    return factors


def _unmerge_lora(encoder_state: dict[str, torch.Tensor], factors: Mapping[str, torch.Tensor]) -> None:
    """Subtracts (B @ A) * alpha / r from each adapted weight of `encoder_state` (official names)."""
    for key, lora_a in factors.items():
        block, layer, factor = LORA_KEY.fullmatch(key).groups()
        if factor == "A":
            weight = f"blocks.{block}.attn.{layer}.weight"
            scaling = AUTHORS_LORA_ALPHA / lora_a.shape[0]
            update = factors[key[:-1] + "B"].double() @ lora_a.double() * scaling
            encoder_state[weight] = (encoder_state[weight].double() - update).to(encoder_state[weight].dtype)


def _peft_factors(model: RawSectionModel) -> dict[str, tuple[str, torch.Tensor]]:
    """The authors' name of each LoRA factor of the model's peft-wrapped encoder -> (its key, its tensor)."""
    factors = {}
    for key, value in model.state_dict().items():
        match = _PEFT_FACTOR.fullmatch(key)
        if match:
            factors[ENCODER_PREFIX + match[1]] = (key, value)
    return factors


def load_authors_checkpoint(
    path: Path,
    network: str,
    task: TaskSpec,
    *,
    finetune: str = "full",
    lora_path: Path | None = None,
    encoder: str = "vit_small_patch14_dinov2",
    lora_in_weights: bool = False,
) -> RawSectionModel:
    """The geofm `network` for `task` with the weights of a state dict saved by the authors' script
    (`torch.save(net.state_dict())`), in eval mode, with `input_scaling="authors"` (and the authors' UNet
    forward), so its logits equal their forward's on the same raw section.

    `finetune`: the mode the checkpoint was trained in (frozen | full | lora); `lora` needs loralib factors,
    in the checkpoint or in `lora_path` (their `lora_state_dict` file, which wins), and loads them into
    peft LoRA layers of the same rank (alpha 1, as theirs). The default computes W x + (B A x) alpha / r
    from the file's W, as the authors' evaluation script does (it loads both files, then `eval()` merges).
    `lora_in_weights=True` says the file's W already holds the update (loralib merges it into W in eval
    mode, in which their script saves after every validation pass): the model then computes W x.
    Bad files raise naming the file and the first missing, unexpected or mis-shaped keys.
    """
    if network not in NETWORKS:
        raise UnknownKeyError(unknown_key_message("network", network, NETWORKS))
    path = Path(path)
    state = _read(path)
    if network == "unet":
        model = build_model("unet", task, input_scaling="authors", unet_forward="authors")
    else:
        model = _build_vit(path, state, network, task, finetune, lora_path, encoder, lora_in_weights)
    targets = {key: value for key, value in model.state_dict().items()
               if key.startswith(("decoder.", "unet."))}
    names = {authors_key(network, key): key for key in targets}
    _check_keys(path, state, {name: targets[key] for name, key in names.items()})
    model.load_state_dict({names[name]: value for name, value in state.items()}, strict=False)
    model.weights_source = f"authors:{path.resolve()}"
    return model.eval()


def _build_vit(path: Path, state: dict[str, torch.Tensor], network: str, task: TaskSpec, finetune: str,
               lora_path: Path | None, encoder: str, lora_in_weights: bool) -> RawSectionModel:
    """The ViT model with the checkpoint's encoder (and LoRA factors) loaded; `state` keeps the rest."""
    factors = _lora_factors(state, lora_path)
    if (finetune == "lora") != bool(factors):
        found = f"LoRA factors ({_first(set(factors))})" if factors else "no LoRA factors"
        files = f"{path} with {lora_path}" if lora_path else str(path)
        raise AuthorsCheckpointError(f"authors' checkpoint {files} holds {found}, which does not fit "
                                     f"finetune={finetune!r}")
    encoder_keys = [key for key in state if key.startswith(ENCODER_PREFIX)]
    encoder_state = {key[len(ENCODER_PREFIX):]: state.pop(key) for key in encoder_keys}
    if lora_in_weights:
        _unmerge_lora(encoder_state, factors)
    rank = next(iter(factors.values())).shape[0] if factors else 8
    try:
        model = build_model(network, task, encoder=encoder, weights=encoder_state, finetune=finetune,
                            lora_rank=rank, input_scaling="authors")
    except WeightLoadError as error:
        raise AuthorsCheckpointError(f"the encoder (keys under 'encoder.') of authors' checkpoint {path}: "
                                     f"{error}") from error
    if factors:
        targets = _peft_factors(model)
        _check_keys(lora_path or path, factors, {name: tensor for name, (_, tensor) in targets.items()})
        model.load_state_dict({targets[name][0]: value for name, value in factors.items()}, strict=False)
    return model
