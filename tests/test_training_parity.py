"""Parity of a training step with the authors' (tests/authors_training.py): from identical weights and the
same mirror-pair batch, geofm's `fit` under their settings (weighted dice, AdamW betas 0.7/0.999, weight
decay 0.01, `train.regime: authors`) reaches the same loss and the same weights after epoch 1 (train mode,
LoRA factors learning) and after epoch 2 (eval mode: running BatchNorm statistics, LoRA merged and frozen).
And bf16 autocast on CUDA keeps the classes of the fp32 forward."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from authors_reference import decoder_layout, encoder_layout, random_state
from authors_training import AdamW, mirror_pair_batch, training_step

from training.checkpoint import load_checkpoint
from training.data.dataset import FlipPairedDataset
from training.fit import fit
from training.fit_config import fit_config
from training.models.authors import load_authors_checkpoint
from training.models.authors.names import authors_key
from training.resume import LAST_CHECKPOINT
from training.tasks import get_task

SECTION = (56, 70)  # a 4 x 5 patch grid; the UNet's bottleneck is 3 x 4
TASK = get_task("seam").with_shape(SECTION)  # 6 classes
LR = 1e-5  # their scripts' (`run/*.sh`: -l 1e-5)
TOLERANCE = 1e-5  # of the largest weight, float32
UPDATE_TOLERANCE = 1e-3  # of each tensor's update (its L2 norm): sees a wrong weight decay or moment
_PEFT_FACTOR = re.compile(r"encoder\.vit\.model\.(blocks\.\d+\.attn\.(?:qkv|proj)\.lora_[AB])"
                          r"\.default\.weight")

pytestmark = pytest.mark.usefixtures("single_torch_thread")


class _Sections(FlipPairedDataset):
    """Raw sections and labels in memory, each followed by its mirror (as the prepared datasets)."""

    def __init__(self, sections: np.ndarray, labels: np.ndarray) -> None:
        super().__init__(len(sections), flip_pairs=True)
        self.sections, self.labels = sections, labels

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sections[index], self.labels[index]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One raw section in [0, 255) and labels holding every class (their weights index each class)."""
    rng = np.random.default_rng(seed)
    sections = (rng.random((1, *SECTION)) * 255).astype(np.float32)
    stripes = np.arange(SECTION[0] * SECTION[1]).reshape(1, *SECTION) // 7
    labels = stripes + rng.integers(0, 6, (1, *SECTION))
    return sections, (labels % TASK.num_classes).astype(np.uint8)


def _authors_name(network: str, key: str) -> str:
    factor = _PEFT_FACTOR.fullmatch(key)
    return f"encoder.{factor[1]}" if factor else authors_key(network, key)


def _geofm_after(network: str, state: dict[str, torch.Tensor], epochs: int, folder: Path,
                 ) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The trainable state (authors' names) and per-epoch losses of geofm's `fit` from `state`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "authors.pth"
    torch.save(state, path)
    finetune = "full" if network == "unet" else "lora"
    model = load_authors_checkpoint(path, network, TASK, finetune=finetune)
    data = _Sections(*_data())
    config = fit_config(epochs=epochs, batch_size=1, lr=LR, loss="weighted_dice", device="cpu",
                       batch_composition="mirror_pairs", regime="authors")
    fit(model, data, data, TASK.num_classes, config, folder / "checkpoints")
    checkpoint = load_checkpoint(folder / "checkpoints" / LAST_CHECKPOINT)
    trained = {_authors_name(network, key): value for key, value in checkpoint["model"].items()
               if value.is_floating_point() and not key.startswith("input_")}
    return trained, [entry["train_loss"] for entry in checkpoint["history"]]


def _authors_after(network: str, state: dict[str, torch.Tensor], trainable: set[str], epochs: int,
                   weight_decay: float = 0.01) -> tuple[dict[str, torch.Tensor], list[float]]:
    state = {key: value.clone() for key, value in state.items()}
    x, y = mirror_pair_batch(*_data(), network, TASK.patch_grid)
    optimizer = AdamW(LR, weight_decay)
    losses = [training_step(network, state, trainable, x, y, TASK.num_classes, epoch, optimizer)
              for epoch in range(1, epochs + 1)]
    return state, losses


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


def _update_error(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                  before: dict[str, torch.Tensor], keys: list[str]) -> float:
    """The largest relative L2 error of a tensor's update (tensors the step did not move left out)."""
    errors = [float((got[key] - expected[key]).norm() / (expected[key] - before[key]).norm()) for key in keys
              if not torch.equal(expected[key], before[key])]
    return max(errors)


def _checkpoint(network: str) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Seeded weights in the authors' layout, and the names their optimizer updates."""
    decoder = decoder_layout(network, TASK.num_classes)
    state = random_state(decoder if network == "unet" else encoder_layout(lora=True) | decoder, seed=5)
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    trainable = {key for key in state if not key.endswith(statistics)
                 and (not key.startswith("encoder.") or ".lora_" in key)}
    return state, trainable


# The UNet has BatchNorm in every stage; LINEAR with LoRA has the encoder's factors. (PUP, MLA and DPT
# steps are ill-conditioned in float32 on such small batches: AdamW divides near-zero gradients by their
# own size, and the reference alone, float32 against float64, already differs by 2e-4 there.)
@pytest.mark.parametrize("network", ["unet", "linear"])
@pytest.mark.parametrize("epochs", [1, 2])
def test_a_training_step_equals_the_authors(network: str, epochs: int, tmp_path: Path) -> None:
    state, trainable = _checkpoint(network)
    geofm, geofm_losses = _geofm_after(network, state, epochs, tmp_path)
    expected, expected_losses = _authors_after(network, state, trainable, epochs)

    assert geofm_losses == pytest.approx(expected_losses, rel=TOLERANCE)
    assert set(geofm) <= set(expected)
    assert trainable <= set(geofm)  # every trained tensor (and every running statistic) is compared
    for key in geofm:
        assert _relative_error(geofm[key], expected[key]) < TOLERANCE, key
    assert _update_error(geofm, expected, state, sorted(trainable)) < UPDATE_TOLERANCE
    # The comparison sees the decoupled weight decay: without it, the updates differ beyond the tolerance.
    undecayed, _ = _authors_after(network, state, trainable, epochs, weight_decay=0.0)
    assert _update_error(geofm, undecayed, state, sorted(trainable)) > 3 * UPDATE_TOLERANCE


def test_from_epoch_two_lora_factors_and_batch_statistics_stay(tmp_path: Path) -> None:
    """Epoch 2 runs in eval mode: the factors keep their epoch-1 values (loralib merged them), the
    running statistics theirs; the decoder still learns."""
    state, _ = _checkpoint("linear")
    first, _ = _geofm_after("linear", state, 1, tmp_path / "one")
    second, _ = _geofm_after("linear", state, 2, tmp_path / "two")
    factors = [key for key in first if ".lora_" in key]
    assert len(factors) == 48
    assert all(torch.equal(first[key], second[key]) for key in factors)
    assert not torch.equal(first["decoder.weight"], second["decoder.weight"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (bf16 autocast runs only there)")
@pytest.mark.parametrize("network", ["unet", "linear", "dpt"])
def test_bf16_autocast_on_cuda_keeps_the_classes_of_the_fp32_forward(network: str, tmp_path: Path) -> None:
    """At the record's DAS size, the classes under bf16 autocast (training's and evaluation's precision on
    CUDA) equal the fp32 forward's wherever fp32's two best logits are apart by 5% of its logit range,
    and on at least 99% of all pixels."""
    task = get_task("das")
    layout = decoder_layout(network, task.num_classes)
    state = random_state(layout if network == "unet" else encoder_layout(lora=True) | layout, seed=7)
    torch.save(state, tmp_path / "authors.pth")
    finetune = "full" if network == "unet" else "lora"
    model = load_authors_checkpoint(tmp_path / "authors.pth", network, task, finetune=finetune).cuda().eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy((rng.random((2, 1, *task.shape)) * 255).astype(np.float32)).cuda()
    with torch.inference_mode():
        fp32 = model(x).float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = model(x).float()
    top2 = fp32.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05 * (fp32.max() - fp32.min())
    same = fp32.argmax(dim=1) == bf16.argmax(dim=1)
    assert bool(same[clear].all())
    assert float(same.float().mean()) >= 0.99
