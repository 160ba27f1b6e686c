"""Decoders: each one `nn.Module(embed_dim, num_classes)` whose forward takes the encoder's list of
NCHW maps (blocks 3, 6, 9, 12) and the label size, and returns logits at that size."""

from __future__ import annotations

from torch import nn

from training.models.decoders.dpt import DPTDecoder
from training.models.decoders.linear import LinearDecoder
from training.models.decoders.mla import MLADecoder
from training.models.decoders.pup import PUPDecoder

DECODERS: dict[str, type[nn.Module]] = {
    "linear": LinearDecoder,
    "pup": PUPDecoder,
    "mla": MLADecoder,
    "dpt": DPTDecoder,
}
