"""Which encoder block reaches which decoder level, for MLA and DPT, as the authors' forward defines it.

The maps of blocks 3, 6, 9 and 12 all have one shape, so a decoder that reads them in another order still
runs and trains. Here hooks record what each decoder module receives during one forward of the whole
segmenter, and each received map is identified as the normed output of one of the ViT's 12 blocks.
The authors' names are in the comments (see AUTHORS_CHECKPOINTS.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from training.models import build_model
from training.tasks import get_task

SECTION = (28, 42)  # a 2x3 patch grid; the DPT stages end at 1/16, 1/8, 1/4, 1/2 of it: all different
TASK = get_task("salt").with_shape(SECTION)

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@dataclass(frozen=True)
class Call:
    arguments: dict[str, Any]
    output: Any


@contextmanager
def recording(modules: dict[str, nn.Module]) -> Iterator[dict[str, list[Call]]]:
    """Every call of each named module during the block: its arguments by parameter name, and its output."""
    calls: dict[str, list[Call]] = {name: [] for name in modules}

    def hook_for(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            bound = inspect.signature(module.forward).bind(*args, **kwargs)
            calls[name].append(Call(dict(bound.arguments), output))
        return record

    handles = [module.register_forward_hook(hook_for(name), with_kwargs=True)
               for name, module in modules.items()]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def block_maps(vit: nn.Module, calls: dict[str, list[Call]],
               grid: tuple[int, int]) -> dict[int, torch.Tensor]:
    """Block number (1-based) -> its output through the encoder's final norm, patch tokens as a map."""
    maps = {}
    for index in range(len(vit.blocks)):
        tokens = vit.norm(calls[f"block {index + 1}"][0].output)[:, vit.num_prefix_tokens:]
        maps[index + 1] = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *grid)
    return maps


def block_of(feature: torch.Tensor, maps: dict[int, torch.Tensor]) -> int | None:
    """The block whose map (or projected map) `feature` is, or None if it is none of them."""
    same = [block for block, map_ in maps.items() if torch.allclose(feature, map_, rtol=1e-5, atol=1e-6)]
    assert len(same) <= 1, f"blocks {same} have one map"
    return same[0] if same else None


Calls = dict[str, list[Call]]


def run_segmenter(network: str, decoder_modules: dict[str, str]) -> tuple[Calls, dict[int, torch.Tensor]]:
    """One forward of the `network` segmenter with its ViT blocks and the named decoder modules hooked."""
    torch.manual_seed(0)
    model = build_model(network, TASK, weights="none", finetune="frozen").eval()
    vit = model.encoder.vit
    modules = {f"block {index + 1}": block for index, block in enumerate(vit.blocks)}
    modules |= {name: model.decoder.get_submodule(path) for name, path in decoder_modules.items()}
    with torch.inference_mode(), recording(modules) as calls:
        model(torch.randn(1, 1, *SECTION))
        maps = block_maps(vit, calls, TASK.patch_grid)
    return calls, maps


def test_mla_reads_block_12_first_and_adds_9_6_3_top_down() -> None:
    # levels.K is the authors' net{K+1}: inlet = net_in, refine = net_intmd, head = net_out.
    modules = {f"{part} {k}": f"levels.{k}.{part}" for k in range(4) for part in ("inlet", "refine", "head")}
    calls, maps = run_segmenter("mla", {**modules, "classifier": "classifier"})

    inlets = [calls[f"inlet {k}"][0] for k in range(4)]
    assert [block_of(inlet.arguments["input"], maps) for inlet in inlets] == [12, 9, 6, 3]
    # Top-down: block 12's level has no refine and its head reads its inlet; each shallower level refines
    # the running sum of its inlet and every deeper one, then its head reads that.
    assert calls["refine 0"] == []
    assert torch.equal(calls["head 0"][0].arguments["input"], inlets[0].output)
    running = inlets[0].output
    for k in range(1, 4):
        running = running + inlets[k].output
        torch.testing.assert_close(calls[f"refine {k}"][0].arguments["input"], running, rtol=0, atol=0)
        assert torch.equal(calls[f"head {k}"][0].arguments["input"], calls[f"refine {k}"][0].output)
    # The classifier reads the heads' maps in the order block 12, 9, 6, 3.
    heads = torch.cat([calls[f"head {k}"][0].output for k in range(4)], dim=1)
    assert torch.equal(calls["classifier"][0].arguments["input"], heads)


def test_dpt_starts_from_block_12_alone_and_adds_9_6_3() -> None:
    # projections.K is the authors' scratch.layer{K+1}_rn; fusions.K is their refinenet{4-K}.
    modules = {f"projection {k}": f"projections.{k}" for k in range(4)}
    modules |= {f"fusion {k}": f"fusions.{k}" for k in range(4)}
    calls, maps = run_segmenter("dpt", {**modules, "neck": "neck"})

    projections = [calls[f"projection {k}"][0] for k in range(4)]
    assert [block_of(p.arguments["input"], maps) for p in projections] == [3, 6, 9, 12]
    projected = {block: p.output for p, block in zip(projections, (3, 6, 9, 12), strict=True)}

    fusions = [calls[f"fusion {k}"][0].arguments for k in range(4)]
    assert fusions[0]["skip"] is None
    reached = [block_of(fusions[0]["path"], projected)]
    reached += [block_of(fusion["skip"], projected) for fusion in fusions[1:]]
    assert reached == [12, 9, 6, 3]
    for k in range(1, 4):
        assert torch.equal(fusions[k]["path"], calls[f"fusion {k - 1}"][0].output)
    height, width = SECTION
    assert [tuple(f["size"]) for f in fusions] == [(height // d, width // d) for d in (16, 8, 4, 2)]
    assert torch.equal(calls["neck"][0].arguments["input"], calls["fusion 3"][0].output)
