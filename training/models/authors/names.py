"""The authors' key name of each geofm decoder and UNet key (their layout: ../shared/AUTHORS_CHECKPOINTS.md).

The encoder needs no rule: its keys are the official DINOv2 names, which timm shares, under `encoder.`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Rule = tuple[str, Callable[[re.Match[str]], str]]

_MLA_PARTS = {"inlet": "in.layer_1", "refine": "intmd.layer_intmd", "head.0": "out.layer_2",
              "head.1": "out.layer_3", "head.3": "out.layer_4"}
_DPT_UNITS = {"skip_unit": "resConfUnit1", "path_unit": "resConfUnit2"}
_DPT_UNIT_LAYERS = {"1": "conv1", "2": "bn1", "4": "conv2", "5": "bn2"}

RULES: dict[str, tuple[Rule, ...]] = {
    "linear": (
        (r"decoder\.classifier\.(.+)", lambda m: f"decoder.{m[1]}"),
    ),
    "pup": (  # decode_net: conv blocks at 0, 2, 4, 6 (upsamplings between), the classifier at 8
        (r"decoder\.stages\.(\d)\.(.+)", lambda m: f"decoder.decode_net.{2 * int(m[1])}.{m[2]}"),
        (r"decoder\.classifier\.(.+)", lambda m: f"decoder.decode_net.8.{m[1]}"),
    ),
    "mla": (  # level K (block 12, 9, 6, 3) is their net{K+1}
        (r"decoder\.levels\.(\d)\.(inlet|refine|head\.\d)\.(.+)",
         lambda m: f"decoder.net{int(m[1]) + 1}_{_MLA_PARTS[m[2]]}.{m[3]}"),
        (r"decoder\.classifier\.(.+)", lambda m: f"decoder.output_net.conv_1.{m[1]}"),
    ),
    "dpt": (  # projection K (block 3K+3) is their layer{K+1}_rn; fusion K their refinenet{4-K}
        (r"decoder\.projections\.(\d)\.(.+)", lambda m: f"scratch.layer{int(m[1]) + 1}_rn.{m[2]}"),
        (r"decoder\.fusions\.(\d)\.(skip_unit|path_unit)\.body\.(\d)\.(.+)",
         lambda m: f"scratch.refinenet{4 - int(m[1])}.{_DPT_UNITS[m[2]]}.{_DPT_UNIT_LAYERS[m[3]]}.{m[4]}"),
        (r"decoder\.fusions\.(\d)\.out_conv\.(.+)",
         lambda m: f"scratch.refinenet{4 - int(m[1])}.out_conv.{m[2]}"),
        (r"decoder\.neck\.(.+)", lambda m: f"scratch.single_conv.{m[1]}"),
        (r"decoder\.head\.(\d)\.(.+)", lambda m: f"scratch.output_conv.{m[1]}.{m[2]}"),
    ),
    "unet": (
        (r"unet\.inlet\.(.+)", lambda m: f"inc.double_conv.{m[1]}"),
        (r"unet\.downs\.(\d)\.1\.(.+)", lambda m: f"down{int(m[1]) + 1}.maxpool_conv.1.double_conv.{m[2]}"),
        (r"unet\.ups\.(\d)\.conv\.(.+)", lambda m: f"up{int(m[1]) + 1}.conv.double_conv.{m[2]}"),
        (r"unet\.classifier\.(.+)", lambda m: f"outc.conv.{m[1]}"),
    ),
}


def authors_key(network: str, key: str) -> str:
    """The authors' name of geofm's decoder (or UNet) key `key` of `network`."""
    for pattern, rename in RULES[network]:
        match = re.fullmatch(pattern, key)
        if match:
            return rename(match)
    raise KeyError(f"no authors' name for the {network} key {key!r}")
