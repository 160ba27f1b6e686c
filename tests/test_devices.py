"""Device leases without GPUs (a fake device count): concurrent trainings get distinct devices, a finished,
failed or killed training frees its own, processes of one machine agree through the lock files, and a
training reused from an identical finished one leases none."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pytest
from tiny_benchmark import REPO, write_tiny_params

from assets.training import GPU_POOL
from pipelines.cli.main import main
from pipelines.orchestration.benchmark_runner import set_pool_limit
from pipelines.orchestration.devices import LockFileDevicePool, NoDeviceError
from training.settings.orchestration import OrchestrationSettings


def _pool(folder: Path, gpus: int = 4, **settings: object) -> LockFileDevicePool:
    orchestration = OrchestrationSettings(lease_dir=str(folder), **settings)
    return LockFileDevicePool.for_settings(orchestration, "auto", gpu_count=gpus)


def test_concurrent_trainings_get_distinct_gpus_and_the_pool_is_then_full(tmp_path: Path) -> None:
    pool = _pool(tmp_path, gpus=4)
    assert pool.concurrency == 4
    with ExitStack() as held:
        devices = [held.enter_context(pool.lease()).device for _ in range(4)]
        assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
        with pytest.raises(NoDeviceError, match="no free device after waiting 0 s"):
            held.enter_context(pool.lease(wait_seconds=0))


def test_threads_leasing_at_once_never_share_a_gpu(tmp_path: Path) -> None:
    pool, seen, all_leased = _pool(tmp_path, gpus=3), [], threading.Barrier(3)

    def training() -> None:
        with pool.lease(wait_seconds=5) as lease:
            seen.append(lease.device)
            all_leased.wait(timeout=5)  # every lease is held at this point

    threads = [threading.Thread(target=training) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == ["cuda:0", "cuda:1", "cuda:2"]


def test_a_finished_trainings_device_is_reused(tmp_path: Path) -> None:
    pool = _pool(tmp_path, gpus=3)
    trainings = [ExitStack() for _ in range(3)]
    devices = [training.enter_context(pool.lease()).device for training in trainings]
    assert devices == ["cuda:0", "cuda:1", "cuda:2"]
    trainings[1].close()  # the training on cuda:1 ends
    with trainings[0], trainings[2], pool.lease(wait_seconds=0) as next_training:
        assert next_training.device == "cuda:1"


def test_a_failed_training_frees_its_device(tmp_path: Path) -> None:
    pool = _pool(tmp_path, gpus=1)
    with pytest.raises(RuntimeError, match="diverged"), pool.lease() as lease:
        assert lease.device == "cuda:0"
        raise RuntimeError("diverged")
    with pool.lease(wait_seconds=0) as again:
        assert again.device == "cuda:0"


HOLDER = """
import sys, time
from pathlib import Path
from pipelines.orchestration.devices import LockFileDevicePool
pool = LockFileDevicePool(Path(sys.argv[1]), "cuda", (0, 1))
with pool.lease() as lease:
    print(lease.device, flush=True)
    time.sleep(60)
"""


def test_another_process_holds_its_gpu_until_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "cuda:0"
        pool = LockFileDevicePool(tmp_path, "cuda", (0, 1))
        with pool.lease(wait_seconds=0) as lease:
            assert lease.device == "cuda:1"
            with pytest.raises(NoDeviceError):
                with pool.lease(wait_seconds=0):
                    pass
        holder.kill()  # SIGKILL: no cleanup code runs, the operating system drops the lock
        holder.wait(timeout=10)
        with pool.lease(wait_seconds=0) as lease:
            assert lease.device == "cuda:0"
    finally:
        holder.kill()
        holder.stdout.close()


def test_ddp_trainings_lease_disjoint_groups(tmp_path: Path) -> None:
    pool = _pool(tmp_path, gpus=4, gpus_per_training=2)
    assert pool.concurrency == 2
    with pool.lease() as first, pool.lease() as second:
        assert first.devices == ("cuda:0", "cuda:1") and second.devices == ("cuda:2", "cuda:3")
        assert (first.cuda_visible_devices, second.cuda_visible_devices) == ("0,1", "2,3")


def test_without_gpu_trainings_take_cpu_slots(tmp_path: Path) -> None:
    pool = _pool(tmp_path, gpus=0, cpu_trainings=2)
    assert (pool.kind, pool.concurrency) == ("cpu", 2)
    with pool.lease() as first, pool.lease() as second:
        assert first.devices == second.devices == ("cpu",) and first.cuda_visible_devices is None
        with pytest.raises(NoDeviceError), pool.lease(wait_seconds=0):
            pass
        with first.activate():  # nothing to select on the CPU
            pass


def test_devices_follow_the_settings_and_the_machine(tmp_path: Path) -> None:
    assert _pool(tmp_path, gpus=4, devices=2).indices == (0, 1)
    settings = OrchestrationSettings(lease_dir=str(tmp_path))
    assert LockFileDevicePool.for_settings(settings, "cuda:3", gpu_count=4).indices == (3,)
    assert LockFileDevicePool.for_settings(settings, "cpu", gpu_count=4).kind == "cpu"
    with pytest.raises(NoDeviceError, match="orchestration.devices is 3, but this machine has 2 GPU"):
        _pool(tmp_path, gpus=2, devices=3)
    with pytest.raises(NoDeviceError, match="needs 2 cuda device"):
        _pool(tmp_path, gpus=1, gpus_per_training=2)


def test_the_gpu_pool_limit_follows_the_device_count(tmp_path: Path) -> None:
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pool = _pool(tmp_path / "leases", gpus=4, gpus_per_training=2)
        assert set_pool_limit(instance, pool, GPU_POOL) == 2
        assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 2


@pytest.mark.usefixtures("single_torch_thread")
def test_a_reused_training_leases_no_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_tiny_params(tmp_path, ["salt"], ["unet"])
    train = ["--root", str(tmp_path), "train", "--task", "salt", "--model", "unet"]
    for command in (["--root", str(tmp_path), "raw"], ["--root", str(tmp_path), "prepare", "--task", "salt"],
                    train):
        assert main(command) == 0, capsys.readouterr().err

    def refuse(pool: LockFileDevicePool, *args: object, **kwargs: object) -> None:
        raise AssertionError("a training reused from a finished one waited for a device")

    monkeypatch.setattr(LockFileDevicePool, "lease", refuse)
    capsys.readouterr()
    assert main(train) == 0, capsys.readouterr().err
    assert "reused the identical finished training" in capsys.readouterr().out
