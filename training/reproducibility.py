"""Strict reproducibility (`train.reproducibility: strict`): the same CPU kernels, hence the same bits, on
every x86-64 machine with AVX2.

A float result on the CPU depends on the kernel that computed it: ATen picks its vectorised kernels by the
processor's instruction set, MKL its GEMM branch by the processor, oneDNN its convolution kernels and their
blocking by the instruction set and the cache sizes, and threaded reductions split by the thread count.
Strict mode pins them with environment variables, before torch loads (`STRICT_ENVIRONMENT`, applied by
`pipelines.kernel_pinning` in every process that trains or evaluates), and around a training
`strict_kernels` fixes the thread count, turns off NNPACK (it dispatches on the processor, no variable pins
it) and asks for deterministic algorithms; on CUDA also cuDNN without benchmarking (the cuBLAS workspace is
pinned in the environment). bf16 autocast on CUDA is unchanged. oneDNN stays on, pinned to AVX2: without it
the convolutions fall back to ATen's im2col kernels, 20x slower on DPT; its blocking still follows the
cache sizes, the one kernel choice no setting pins (docs/reproduce.md).
Measured: docs/reproduce.md. This module imports torch only inside its functions, so the process
start can read `STRICT_ENVIRONMENT` before torch loads.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version

MODES = ("fast", "strict")
STRICT_THREADS = 2
"""Intra-op threads in strict mode, on any machine (2: the demo's machine class, a 2-core CPU)."""
STRICT_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
    "OMP_NUM_THREADS": str(STRICT_THREADS),
    "MKL_NUM_THREADS": str(STRICT_THREADS),
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}
"""Read by the libraries when torch loads or at their first call: ATen's kernels, oneDNN's instruction set
(both names), MKL's conditional numerical reproducibility (AVX2 branch, strict: also independent of the
thread count), the OpenMP and MKL thread pools, and the cuBLAS workspace that makes CUDA GEMMs
deterministic."""
PINNED_CAPABILITY = "AVX2"
"""What `torch.backends.cpu.get_cpu_capability()` reports once `ATEN_CPU_CAPABILITY` took effect."""


class UnpinnedKernelsWarning(RuntimeWarning):
    """Strict mode was asked for in a process whose torch loaded before the kernels were pinned."""


def unpinned_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The variables of `STRICT_ENVIRONMENT` that `environ` lacks or sets to another value."""
    return [name for name, value in STRICT_ENVIRONMENT.items() if environ.get(name) != value]


def kernels_pinned() -> bool:
    """Whether this process runs the pinned kernels: the variables set and ATen on the AVX2 kernels."""
    import torch

    return not unpinned_variables() and torch.backends.cpu.get_cpu_capability() == PINNED_CAPABILITY


def unpinned_message() -> str:
    """Why a process cannot give strict mode's bits, in one sentence."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    unpinned = ", ".join(unpinned_variables()) or "the variables set only after torch loaded"
    return (f"train.reproducibility is strict, but torch loaded with ATen's {capability} kernels and "
            f"{unpinned} unpinned: start the process "
            "through `geofm` (or `python -m pipelines`, or Dagster's code location), which pins "
            + " ".join(f"{name}={value}" for name, value in STRICT_ENVIRONMENT.items())
            + " before torch loads")


@contextmanager
def strict_kernels(mode: str) -> Iterator[None]:
    """In strict mode, the kernel flags of a training and its evaluation, put back afterwards: a fixed thread
    count, deterministic algorithms, no NNPACK, no cuDNN benchmarking. Warns (once, naming the
    fix) when the process's kernels were not pinned before torch loaded. In fast mode, nothing changes."""
    import torch

    if mode not in MODES:
        raise ValueError(f"train.reproducibility must be one of {MODES}; got {mode!r}")
    if mode == "fast":
        yield
        return
    if not kernels_pinned():
        warnings.warn(unpinned_message(), UnpinnedKernelsWarning, stacklevel=3)
    cudnn = torch.backends.cudnn
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), cudnn.benchmark,
                cudnn.deterministic)
    torch.set_num_threads(STRICT_THREADS)
    torch.use_deterministic_algorithms(True)
    (nnpack,) = torch.backends.nnpack.set_flags(False)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        threads, deterministic, benchmark, cudnn_deterministic = previous
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.nnpack.set_flags(nnpack)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, cudnn_deterministic


def kernel_params(mode: str) -> dict[str, object]:
    """The kernel state of this process, for a run's params: the mode, what torch runs, every pinned
    variable's value here ('' when unset)."""
    import torch

    return {
        "reproducibility": mode,
        "kernels.pinned": kernels_pinned(),
        "kernels.cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "kernels.threads": torch.get_num_threads(),
        "kernels.deterministic": torch.are_deterministic_algorithms_enabled(),
        "kernels.onednn": torch.backends.mkldnn.enabled,
        "kernels.cudnn_benchmark": torch.backends.cudnn.benchmark,
        **{f"env.{name}": os.environ.get(name, "") for name in STRICT_ENVIRONMENT},
    }


def machine_class() -> str:
    """The processors that strict mode treats as one: `x86_64+avx2` when the CPU has AVX2, else the
    architecture alone (strict mode's bits are promised within a class)."""
    architecture = platform.machine()
    return f"{architecture}+avx2" if "avx2" in _cpu_flags() else architecture


def _cpu_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _cpu_model() -> str:
    try:
        match = re.search(r"^model name\s*:(.*)$", open("/proc/cpuinfo").read(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else platform.processor()


def provenance(mode: str, device: str) -> dict[str, str]:
    """How scores are made here: the mode, the device kind (`train.device`, `auto` resolved), the machine
    class and processor, and the versions of Python, torch, numpy and the MKL and oneDNN inside torch."""
    import torch

    build = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version (\S+)", build)
    onednn = re.search(r"MKL-DNN v(\S+)", build)
    kind = "cuda" if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "cpu"
    return {"mode": mode, "device": kind, "machine": machine_class(), "cpu": _cpu_model(),
            "python": ".".join(map(str, sys.version_info[:3])), "torch": torch.__version__,
            "numpy": version("numpy"), "mkl": mkl.group(1) if mkl else "",
            "onednn": onednn.group(1) if onednn else ""}
