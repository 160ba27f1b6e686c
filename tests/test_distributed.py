"""Data-parallel training on the CPU (gloo, 2 processes): the same weights and metrics as one process
training on the same global batches, one MLflow run and one model version, checkpoints written by rank 0
only, and a resumed run reaching the uninterrupted weights. The samplers without processes."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from tiny_models import TinySegmenter
from torch.utils.data import Dataset

from training.distributed.context import SINGLE_PROCESS, from_environment, shutdown
from training.distributed.sampler import PairedDistributedSampler, ShardSampler
from training.distributed.tracking import main_process_run
from training.fit import fit
from training.fit_config import fit_config
from training.losses import build_loss
from training.metrics import ConfusionMatrix

WORLD = 2
CLASSES = 3
SAMPLES = 6  # 12 items with mirrors: 3 samples (6 items) per process, 3 steps of 2 items each, per epoch
CONFIG = dict(epochs=3, batch_size=4, lr=1e-2, loss="cross_entropy", seed=7, device="cpu")
ATOL = 1e-5
"""float32 on the CPU: DDP averages two per-process gradients, one process takes the gradient of the global
mean; they differ by summation order only (seen after 9 AdamW steps: 6e-8 in weights, 2e-7 in metrics)."""


class MirroredSections(Dataset):
    """n random (1, 8, 8) sections and labels, item i + n the mirror of item i (as `PreparedDataset`)."""

    flip_pairs = True

    def __init__(self, num_samples: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.num_samples = num_samples
        self.x = torch.rand(num_samples, 1, 8, 8, generator=generator) * 255
        self.y = torch.randint(0, CLASSES, (num_samples, 8, 8), generator=generator, dtype=torch.uint8)

    def __len__(self) -> int:
        return 2 * self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample, flipped = index % self.num_samples, index >= self.num_samples
        x, y = self.x[sample], self.y[sample]
        return (x.flip(-1), y.flip(-1)) if flipped else (x, y)


def _model() -> TinySegmenter:
    torch.manual_seed(0)
    return TinySegmenter(num_classes=CLASSES, input_mean=127.5, input_std=64.0, training_shape=(8, 8))


class CopyCheckpoint:
    """Keeps a copy of the checkpoint folder as it was after epoch `epoch` (an 'interrupted' run)."""

    def __init__(self, source: Path, target: Path, epoch: int) -> None:
        self.source, self.target, self.epoch = source, target, epoch

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch == self.epoch:
            shutil.copytree(self.source, self.target)


def _worker(rank: int, port: int, folder: Path) -> None:
    """One process of the torchrun-like training: full run (logged to MLflow by rank 0), then a resume from
    the checkpoint of its epoch 1."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from pipelines.tracking.store import BenchmarkStore

    distributed = from_environment()
    assert distributed.from_main(f"decided by rank {rank}") == "decided by rank 0"
    store = BenchmarkStore(f"sqlite:///{folder}/mlflow.db", (folder / "artifacts").as_uri(), "ddp")
    checkpoints = folder / f"checkpoints-rank{rank}"  # one folder each, to see who writes
    config = fit_config(**CONFIG)
    model = _model()

    def open_run():
        return store.child_run(store.parent_run("ddp-test", {}), "ddp")

    with main_process_run(distributed, open_run) as tracker:
        copy = CopyCheckpoint(checkpoints, folder / "after-epoch-1", epoch=1)
        result = fit(model, MirroredSections(SAMPLES, 1), MirroredSections(5, 2), CLASSES, config,
                     checkpoints, callbacks=[tracker, copy], distributed=distributed)
        logged = tracker.log_model(model, "model")
    if distributed.is_main:  # registered once the run finished, as the training stage does
        store.publish(tracker.run_id, logged.uri, "ddp", "tiny", result.best_val_miou)
    resumed = _model()
    fit(resumed, MirroredSections(SAMPLES, 1), MirroredSections(5, 2), CLASSES, config,
        folder / "after-epoch-1", distributed=distributed)
    torch.save({"history": result.history, "best_epoch": result.best_epoch, "model": model.state_dict(),
                "resumed": resumed.state_dict()}, folder / f"rank{rank}.pt")
    shutdown()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _reference(epochs: int) -> tuple[list[dict[str, float]], list[dict[str, torch.Tensor]]]:
    """One process training on the global batches the two processes share (rank 0's items, then rank 1's,
    per step): history and weights after every epoch."""
    train, val = MirroredSections(SAMPLES, 1), MirroredSections(5, 2)
    model, loss_fn = _model(), build_loss("cross_entropy", CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=CONFIG["lr"], betas=(0.7, 0.999), weight_decay=0.01)
    history, weights, local = [], [], CONFIG["batch_size"] // WORLD
    for epoch in range(1, epochs + 1):
        shares = [PairedDistributedSampler(len(train), num_replicas=WORLD, rank=rank, seed=CONFIG["seed"],
                                           epoch=epoch, pair_offset=SAMPLES).indices for rank in range(WORLD)]
        model.train()
        running, loss_sum = ConfusionMatrix(CLASSES), 0.0
        for start in range(0, len(shares[0]), local):
            items = [train[i] for share in shares for i in share[start:start + local]]
            x, y = torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]).long()
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            running.update(logits.argmax(1), y)
        model.eval()
        with torch.no_grad():
            x, y = torch.stack([val[i][0] for i in range(len(val))]), torch.stack(
                [val[i][1] for i in range(len(val))]).long()
            logits = model(x)
            scores = ConfusionMatrix(CLASSES)
            scores.update(logits.argmax(1), y)
        history.append({"train_loss": loss_sum / len(train), "train_miou": running.compute().miou,
                        "val_loss": float(loss_fn(logits, y)), "val_miou": scores.compute().miou})
        weights.append({name: tensor.clone() for name, tensor in model.state_dict().items()})
    return history, weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), folder), nprocs=WORLD, join=True)
    return folder, [torch.load(folder / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD)]


def _assert_same_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name in actual:
        torch.testing.assert_close(actual[name], expected[name], atol=ATOL, rtol=0, msg=name)


@pytest.mark.usefixtures("single_torch_thread")
def test_two_processes_train_as_one_on_the_same_global_batches(trained) -> None:
    _, ranks = trained
    history, weights = _reference(CONFIG["epochs"])
    for ours, expected in zip(ranks[0]["history"], history, strict=True):
        for name, value in expected.items():
            assert ours[name] == pytest.approx(value, abs=ATOL), name
    best = ranks[0]["best_epoch"]
    _assert_same_weights(ranks[0]["model"], weights[best - 1])
    _assert_same_weights(ranks[1]["model"], ranks[0]["model"])
    assert ranks[1]["history"] == ranks[0]["history"]  # the metrics are the summed ones on every process


def test_one_run_one_model_version_and_checkpoints_by_rank_0_only(trained) -> None:
    from mlflow import MlflowClient

    folder, _ = trained
    store = f"sqlite:///{folder}/mlflow.db"  # the registry named too: other tests set mlflow's global one
    client = MlflowClient(store, registry_uri=store)
    experiment = client.get_experiment_by_name("ddp")
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'ddp'")
    assert len(runs) == 1
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "val_miou")] == [1, 2, 3]
    assert [str(v.version) for v in client.search_model_versions("name = 'geofm-ddp-tiny'")] == ["1"]
    assert (folder / "checkpoints-rank0" / "last.pt").is_file()
    assert not (folder / "checkpoints-rank1").exists()


def test_a_resumed_distributed_run_reaches_the_uninterrupted_weights(trained) -> None:
    _, ranks = trained
    for rank in ranks:
        _assert_same_weights(rank["resumed"], ranks[0]["model"])


def test_samples_and_their_mirrors_are_dealt_together_and_cover_the_epoch() -> None:
    shares = [PairedDistributedSampler(14, num_replicas=3, rank=rank, seed=1, epoch=4, pair_offset=7).indices
              for rank in range(3)]
    assert [len(share) for share in shares] == [6, 6, 6]  # 7 samples: ceil(7 / 3) each, one dealt twice
    for share in shares:
        assert all(mirror == sample + 7 for sample, mirror in zip(share[::2], share[1::2], strict=True))
    dealt = [sample for share in shares for sample in share[::2]]
    assert set(dealt) == set(range(7)) and len(dealt) == 9
    again = PairedDistributedSampler(14, num_replicas=3, rank=0, seed=1, epoch=4, pair_offset=7).indices
    next_epoch = PairedDistributedSampler(14, num_replicas=3, rank=0, seed=1, epoch=5, pair_offset=7).indices
    assert again == shares[0] and next_epoch != shares[0]


def test_evaluation_shards_cover_every_item_once_and_one_process_is_unchanged() -> None:
    shards = [ShardSampler(11, num_replicas=3, rank=rank).indices for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    dataset = MirroredSections(4, 0)
    assert SINGLE_PROCESS.train_sampler(dataset, seed=0, epoch=1) is None
    assert SINGLE_PROCESS.local_length(dataset) == 8 and SINGLE_PROCESS.local_batch(4) == 4
    with pytest.raises(ValueError, match="batch size 5 does not split evenly over 2 processes"):
        type(SINGLE_PROCESS)(rank=0, world_size=2).local_batch(5)
