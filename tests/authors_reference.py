"""The authors' side of the parity tests, written independently of geofm's modules.

From ../shared/AUTHORS_CHECKPOINTS.md and the authors' published forward: the key layout of their state
dicts (to write seeded random checkpoints), their input pipeline (numpy, Pillow, torchvision), and their
forward as plain functions over a state dict: official DINOv2 blocks with the official position-embedding
interpolation, loralib's LoRA, LINEAR, SETR-PUP, SETR-MLA, DPT and their U_Net. The forward is the eval-mode
one; inside `batch_statistics()` every BatchNorm is the train-mode one (batch statistics, running ones
updated in the state with momentum 0.1), what their `net.train()` epoch computes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch import Tensor

PATCH = 14
EMBED = 384  # ViT-S/14
HEADS = 6
DEPTH = 12
PRETRAINED_POSITIONS = 37 * 37 + 1
LORA_RANK = 8
LORA_SCALING = 1 / LORA_RANK  # loralib: lora_alpha (1) / r
BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


# --------------------------------------------------------------------------- layouts (key -> shape)

def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {prefix + suffix: () if suffix == "num_batches_tracked" else (channels,) for suffix in BN_SUFFIXES}


def _double_conv(prefix: str, cin: int, cmid: int, cout: int, bias: bool) -> dict[str, tuple[int, ...]]:
    """nn.Sequential(conv 3x3, BN, ReLU, conv 3x3, BN, ReLU): keys 0, 1, 3, 4."""
    layout = {prefix + "0.weight": (cmid, cin, 3, 3)}
    layout |= {prefix + "0.bias": (cmid,)} if bias else {}
    layout |= _bn(prefix + "1.", cmid)
    layout |= {prefix + "3.weight": (cout, cmid, 3, 3)}
    layout |= {prefix + "3.bias": (cout,)} if bias else {}
    return layout | _bn(prefix + "4.", cout)


def encoder_layout(lora: bool) -> dict[str, tuple[int, ...]]:
    layout = {"encoder.cls_token": (1, 1, EMBED), "encoder.pos_embed": (1, PRETRAINED_POSITIONS, EMBED),
              "encoder.mask_token": (1, EMBED), "encoder.patch_embed.proj.weight": (EMBED, 3, PATCH, PATCH),
              "encoder.patch_embed.proj.bias": (EMBED,)}
    for n in range(DEPTH):
        block = f"encoder.blocks.{n}."
        layout |= {block + "norm1.weight": (EMBED,), block + "norm1.bias": (EMBED,)}
        for layer, width in (("qkv", 3 * EMBED), ("proj", EMBED)):
            layout |= {f"{block}attn.{layer}.weight": (width, EMBED), f"{block}attn.{layer}.bias": (width,)}
            if lora:
                layout |= {f"{block}attn.{layer}.lora_A": (LORA_RANK, EMBED),
                           f"{block}attn.{layer}.lora_B": (width, LORA_RANK)}
        layout |= {block + "ls1.gamma": (EMBED,), block + "norm2.weight": (EMBED,),
                   block + "norm2.bias": (EMBED,), block + "mlp.fc1.weight": (4 * EMBED, EMBED),
                   block + "mlp.fc1.bias": (4 * EMBED,), block + "mlp.fc2.weight": (EMBED, 4 * EMBED),
                   block + "mlp.fc2.bias": (EMBED,), block + "ls2.gamma": (EMBED,)}
    return layout | {"encoder.norm.weight": (EMBED,), "encoder.norm.bias": (EMBED,)}


def decoder_layout(network: str, classes: int) -> dict[str, tuple[int, ...]]:
    half, quarter = EMBED // 2, EMBED // 4
    if network == "linear":
        return {"decoder.weight": (classes, EMBED, 1, 1), "decoder.bias": (classes,)}
    if network == "pup":
        layout = {}
        for index, cin in zip((0, 2, 4, 6), (EMBED, quarter, quarter, quarter), strict=True):
            layout |= _double_conv(f"decoder.decode_net.{index}.", cin, quarter, quarter, bias=True)
        return layout | {"decoder.decode_net.8.weight": (classes, quarter, 1, 1),
                         "decoder.decode_net.8.bias": (classes,)}
    if network == "mla":
        layout = {}
        for k in range(1, 5):
            layout |= _double_conv(f"decoder.net{k}_in.layer_1.", EMBED, half, half, bias=True)
            layout |= _double_conv(f"decoder.net{k}_intmd.layer_intmd.", half, half, half, bias=True)
            layout |= _double_conv(f"decoder.net{k}_out.layer_2.", half, half, half, bias=True)
            layout |= _double_conv(f"decoder.net{k}_out.layer_3.", half, quarter, quarter, bias=True)
            layout |= _double_conv(f"decoder.net{k}_out.layer_4.", quarter, quarter, quarter, bias=True)
        return layout | {"decoder.output_net.conv_1.weight": (classes, EMBED, 1, 1),
                         "decoder.output_net.conv_1.bias": (classes,)}
    if network == "dpt":
        layout = {f"scratch.layer{k}_rn.weight": (256, EMBED, 3, 3) for k in range(1, 5)}
        for k in range(1, 5):
            net = f"scratch.refinenet{k}."
            layout |= {net + "out_conv.weight": (256, 256, 1, 1), net + "out_conv.bias": (256,)}
            for unit in ("resConfUnit1.", "resConfUnit2."):
                layout |= {net + unit + "conv1.weight": (256, 256, 3, 3),
                           net + unit + "conv2.weight": (256, 256, 3, 3)}
                layout |= _bn(net + unit + "bn1.", 256) | _bn(net + unit + "bn2.", 256)
        return layout | {"scratch.single_conv.weight": (128, 256, 3, 3), "scratch.single_conv.bias": (128,),
                         "scratch.output_conv.0.weight": (32, 128, 3, 3), "scratch.output_conv.0.bias": (32,),
                         "scratch.output_conv.2.weight": (classes, 32, 1, 1),
                         "scratch.output_conv.2.bias": (classes,)}
    if network == "unet":
        layout = _double_conv("inc.double_conv.", 1, 32, 32, bias=False)
        for k, (cin, cout) in enumerate(((32, 64), (64, 128), (128, 256), (256, 256)), start=1):
            layout |= _double_conv(f"down{k}.maxpool_conv.1.double_conv.", cin, cout, cout, bias=False)
        for k, (cin, cout) in enumerate(((512, 128), (256, 64), (128, 32), (64, 32)), start=1):
            layout |= _double_conv(f"up{k}.conv.double_conv.", cin, cin // 2, cout, bias=False)
        return layout | {"outc.conv.weight": (classes, 32, 1, 1), "outc.conv.bias": (classes,)}
    raise ValueError(network)


def parameter_count(layout: dict[str, tuple[int, ...]]) -> int:
    """Trainable parameters of a layout (batch-norm statistics are buffers)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(shape) for key, shape in layout.items() if not key.endswith(buffers))


def random_state(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, Tensor]:
    """Seeded values of trained-looking scales for every key of `layout` (float32, as the authors save)."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape: tuple[int, ...], std: float, mean: float = 0.0) -> Tensor:
        return torch.randn(shape, generator=generator) * std + mean

    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            value = torch.tensor(7)
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("running_mean"):
            value = normal(shape, 0.1)
        elif key.endswith("gamma"):
            value = normal(shape, 0.05, mean=0.2)
        elif key.endswith("lora_B"):
            value = normal(shape, 0.5)
        elif key.endswith(("cls_token", "pos_embed", "mask_token")):
            value = normal(shape, 0.2)
        elif len(shape) >= 2 or key.endswith("lora_A"):
            value = normal(shape, 1 / math.sqrt(math.prod(shape[1:])))
        elif key.endswith("weight"):  # layer and batch norms
            value = normal(shape, 0.1, mean=1.0)
        else:
            value = normal(shape, 0.1)
        state[key] = value
    return state


# --------------------------------------------------------------------------- the authors' inputs

def authors_vit_input(section: np.ndarray, grid: tuple[int, int]) -> Tensor:
    """Their BasicDataset for the ViT networks: uint8, PIL, Resize to grid x 14, ToTensor, 3 channels."""
    transform = T.Compose([T.Resize((grid[0] * PATCH, grid[1] * PATCH)), T.ToTensor()])
    return transform(Image.fromarray(np.uint8(section)))[None].repeat(1, 3, 1, 1)


def authors_unet_input(section: np.ndarray) -> Tensor:
    """Their BasicDataset for the UNet: the float32 section / 255."""
    return torch.from_numpy(section / 255)[None, None]


# --------------------------------------------------------------------------- the official DINOv2 forward

def official_pos_embed(pos_embed: Tensor, height: int, width: int) -> Tensor:
    """`interpolate_pos_encoding` of the official DINOv2 (and the authors') ViT for an input of
    height x width pixels: the 37 x 37 grid as it is for 518 x 518, else bicubic by scale factor."""
    previous_dtype = pos_embed.dtype
    patches = pos_embed.shape[1] - 1
    if patches == (height // PATCH) * (width // PATCH) and height == width:
        return pos_embed
    pos_embed = pos_embed.float()
    class_pos, patch_pos = pos_embed[:, 0], pos_embed[:, 1:]
    h0, w0 = height // PATCH + 0.1, width // PATCH + 0.1
    side = math.sqrt(patches)
    patch_pos = F.interpolate(patch_pos.reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2),
                              scale_factor=(h0 / side, w0 / side), mode="bicubic")
    assert (int(h0), int(w0)) == patch_pos.shape[-2:]
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])
    return torch.cat((class_pos[:, None], patch_pos), dim=1).to(previous_dtype)


def _lora_linear(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    """loralib's Linear: W x + b + (B A x) * alpha / r when the state holds factors."""
    out = F.linear(x, state[prefix + "weight"], state[prefix + "bias"])
    if prefix + "lora_A" in state:
        out = out + (x @ state[prefix + "lora_A"].T @ state[prefix + "lora_B"].T) * LORA_SCALING
    return out


def _layer_norm(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    return F.layer_norm(x, (x.shape[-1],), state[prefix + "weight"], state[prefix + "bias"], eps=1e-6)


def vit_maps(state: dict[str, Tensor], x: Tensor) -> list[Tensor]:
    """Blocks 3, 6, 9 and 12 of the authors' `forward_features`: normed, patch tokens, as (B, C, gh, gw)."""
    batch, _, height, width = x.shape
    tokens = F.conv2d(x, state["encoder.patch_embed.proj.weight"], state["encoder.patch_embed.proj.bias"],
                      stride=PATCH).flatten(2).transpose(1, 2)
    tokens = torch.cat((state["encoder.cls_token"].expand(batch, -1, -1), tokens), dim=1)
    tokens = tokens + official_pos_embed(state["encoder.pos_embed"], height, width)
    maps = []
    for n in range(DEPTH):
        block = f"encoder.blocks.{n}."
        qkv = _lora_linear(state, block + "attn.qkv.", _layer_norm(state, block + "norm1.", tokens))
        qkv = qkv.reshape(batch, -1, 3, HEADS, EMBED // HEADS).permute(2, 0, 3, 1, 4)
        attention = ((qkv[0] * (EMBED // HEADS) ** -0.5) @ qkv[1].transpose(-2, -1)).softmax(dim=-1)
        mixed = (attention @ qkv[2]).transpose(1, 2).reshape(batch, -1, EMBED)
        tokens = tokens + state[block + "ls1.gamma"] * _lora_linear(state, block + "attn.proj.", mixed)
        normed = _layer_norm(state, block + "norm2.", tokens)
        hidden = F.gelu(F.linear(normed, state[block + "mlp.fc1.weight"], state[block + "mlp.fc1.bias"]))
        tokens = tokens + state[block + "ls2.gamma"] * F.linear(hidden, state[block + "mlp.fc2.weight"],
                                                                state[block + "mlp.fc2.bias"])
        if n + 1 in (3, 6, 9, 12):
            patches = _layer_norm(state, "encoder.norm.", tokens)[:, 1:]
            maps.append(patches.reshape(batch, height // PATCH, width // PATCH, EMBED).permute(0, 3, 1, 2))
    return maps


# --------------------------------------------------------------------------- the authors' decoders

def _conv(state: dict[str, Tensor], prefix: str, x: Tensor, padding: int = 0) -> Tensor:
    return F.conv2d(x, state[prefix + "weight"], state.get(prefix + "bias"), padding=padding)


_BATCH_NORM = {"training": False}


@contextmanager
def batch_statistics() -> Iterator[None]:
    """BatchNorm as in train mode while inside: the batch's statistics, the running ones updated in place."""
    _BATCH_NORM["training"] = True
    try:
        yield
    finally:
        _BATCH_NORM["training"] = False


def _bn_eval(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    return F.batch_norm(x, state[prefix + "running_mean"], state[prefix + "running_var"],
                        state[prefix + "weight"], state[prefix + "bias"], training=_BATCH_NORM["training"],
                        momentum=0.1, eps=1e-5)


def _double_conv_forward(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    x = F.relu(_bn_eval(state, prefix + "1.", _conv(state, prefix + "0.", x, padding=1)))
    return F.relu(_bn_eval(state, prefix + "4.", _conv(state, prefix + "3.", x, padding=1)))


def _linear_head(state: dict[str, Tensor], maps: list[Tensor], size: tuple[int, int]) -> Tensor:
    return F.interpolate(_conv(state, "decoder.", maps[-1]), size=size)


def _pup_head(state: dict[str, Tensor], maps: list[Tensor], size: tuple[int, int]) -> Tensor:
    x = maps[-1]
    for stage in range(4):
        x = _double_conv_forward(state, f"decoder.decode_net.{2 * stage}.", x)
        divisor = 2 ** (3 - stage)
        x = F.interpolate(x, size=(size[0] // divisor, size[1] // divisor), mode="bilinear")
    return _conv(state, "decoder.decode_net.8.", x)


def _mla_head(state: dict[str, Tensor], maps: list[Tensor], size: tuple[int, int]) -> Tensor:
    def out(k: int, x: Tensor) -> Tensor:
        x = _double_conv_forward(state, f"decoder.net{k}_out.layer_2.", x)
        x = _double_conv_forward(state, f"decoder.net{k}_out.layer_3.", x)
        x = F.interpolate(x, scale_factor=4, mode="bilinear")
        return _double_conv_forward(state, f"decoder.net{k}_out.layer_4.", x)

    x3, x6, x9, x12 = maps
    x12_in = _double_conv_forward(state, "decoder.net1_in.layer_1.", x12)
    outputs = [out(1, x12_in)]
    running = x12_in
    for k, x in ((2, x9), (3, x6), (4, x3)):
        running = _double_conv_forward(state, f"decoder.net{k}_in.layer_1.", x) + running
        outputs.append(out(k, _double_conv_forward(state, f"decoder.net{k}_intmd.layer_intmd.", running)))
    x = _conv(state, "decoder.output_net.conv_1.", torch.cat(outputs, dim=1))
    return F.interpolate(x, size=size, mode="bilinear")


def _residual_conv_unit(state: dict[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    out = _bn_eval(state, prefix + "bn1.", _conv(state, prefix + "conv1.", F.relu(x), padding=1))
    out = _bn_eval(state, prefix + "bn2.", _conv(state, prefix + "conv2.", F.relu(out), padding=1))
    return out + x


def _fusion(state: dict[str, Tensor], k: int, size: tuple[int, int], path: Tensor,
            skip: Tensor | None = None) -> Tensor:
    prefix = f"scratch.refinenet{k}."
    if skip is not None:
        res = _residual_conv_unit(state, prefix + "resConfUnit1.", skip)
        res = F.interpolate(res, size=(size[0] // 2, size[1] // 2), mode="bilinear", align_corners=True)
        path = path + res
    path = _residual_conv_unit(state, prefix + "resConfUnit2.", path)
    path = F.interpolate(path, size=size, mode="bilinear", align_corners=True)
    return _conv(state, prefix + "out_conv.", path)


def _dpt_head(state: dict[str, Tensor], maps: list[Tensor], size: tuple[int, int]) -> Tensor:
    rn = [_conv(state, f"scratch.layer{k + 1}_rn.", x, padding=1) for k, x in enumerate(maps)]
    n1, n2 = size
    path = _fusion(state, 4, (n1 // 16, n2 // 16), rn[3])
    path = _fusion(state, 3, (n1 // 8, n2 // 8), path, rn[2])
    path = _fusion(state, 2, (n1 // 4, n2 // 4), path, rn[1])
    path = _fusion(state, 1, (n1 // 2, n2 // 2), path, rn[0])
    out = F.interpolate(_conv(state, "scratch.single_conv.", path, padding=1), size=size)
    out = F.relu(_conv(state, "scratch.output_conv.0.", out, padding=1))
    return F.relu(_conv(state, "scratch.output_conv.2.", out))


HEADS_BY_NETWORK = {"linear": _linear_head, "pup": _pup_head, "mla": _mla_head, "dpt": _dpt_head}


def unet_logits(state: dict[str, Tensor], x: Tensor) -> Tensor:
    """Their U_Net(1, classes).forward(x, (n1, n2)): the upsampled bottleneck is discarded (zero padding)."""
    n1, n2 = x.shape[-2:]

    def upconv(x1: Tensor, x2: Tensor, prefix: str) -> Tensor:
        dy, dx = x2.shape[2] - x1.shape[2], x2.shape[3] - x1.shape[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return _double_conv_forward(state, prefix, torch.cat([x2, x1], dim=1))

    def up(size: tuple[int, int], x: Tensor) -> Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    x1 = _double_conv_forward(state, "inc.double_conv.", x)
    x2 = _double_conv_forward(state, "down1.maxpool_conv.1.double_conv.", F.max_pool2d(x1, 2))
    x3 = _double_conv_forward(state, "down2.maxpool_conv.1.double_conv.", F.max_pool2d(x2, 2))
    x4 = _double_conv_forward(state, "down3.maxpool_conv.1.double_conv.", F.max_pool2d(x3, 2))
    x5 = _double_conv_forward(state, "down4.maxpool_conv.1.double_conv.", F.max_pool2d(x4, 2))
    x = upconv(x5, x4, "up1.conv.double_conv.")
    x = upconv(up((n1 // 4, n2 // 4), x), x3, "up2.conv.double_conv.")
    x = upconv(up((n1 // 2, n2 // 2), x), x2, "up3.conv.double_conv.")
    x = upconv(up((n1, n2), x), x1, "up4.conv.double_conv.")
    return _conv(state, "outc.conv.", x)


def authors_logits(network: str, state: dict[str, Tensor], section: np.ndarray,
                   grid: tuple[int, int]) -> Tensor:
    """Their `net(data, (n1, n2))` in eval mode on one raw section, in float64."""
    state = {key: value.double() if value.is_floating_point() else value for key, value in state.items()}
    if network == "unet":
        return unet_logits(state, authors_unet_input(section).double())
    maps = vit_maps(state, authors_vit_input(section, grid).double())
    return HEADS_BY_NETWORK[network](state, maps, section.shape)
