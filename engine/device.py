"""Picking the device and numeric precision, and reading its memory and utilisation for heartbeats."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from engine.contract.config import Config
from engine.contract.errors import ConfigError

CPU_LOADER_NICENESS = 10


@dataclass(frozen=True)
class DeviceSetup:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full precision
    channels_last: bool

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def loader_niceness(self) -> int:
        """Loader workers yield to the compute threads when both share the CPU."""
        return CPU_LOADER_NICENESS if self.device.type == "cpu" else 0

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def describe(self) -> str:
        name = str(self.device)
        if self.is_cuda:
            name += f" ({torch.cuda.get_device_name(self.device)})"
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")
        return f"{name}, {precision}" + (", channels_last" if self.channels_last else "")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {name!r} but this machine has no usable CUDA GPU. Fix: use device = \"auto\" or \"cpu\".")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"train.device = {name!r} but MPS is not available here. Fix: use device = \"auto\" or \"cpu\".")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"train.device = {name!r} but this machine has {count} visible GPU(s), cuda:0 to "
                          f"cuda:{count - 1}. Fix: pick one of those, or device = \"auto\".")
    return device


def check_device(config: Config) -> None:
    """Before a run folder is made: the device exists, and there is a GPU for each process that wants one."""
    device = resolve_device(config.train.device)
    if device.type == "cuda" and config.dist.nproc_per_node > torch.cuda.device_count():
        raise ConfigError(f"dist.nproc_per_node = {config.dist.nproc_per_node} but this machine has "
                          f"{torch.cuda.device_count()} visible GPU(s): one process per GPU. Fix: set it to at most that.")


def setup_device(config: Config, device_name: str | None = None) -> DeviceSetup:
    t = config.train
    device = resolve_device(device_name or t.device)
    if t.amp == "auto":
        amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        if device.type == "cuda" and amp is None:
            amp = torch.float16
    elif t.amp == "off":
        amp = None
    elif t.amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("train.amp = \"fp16\" needs a CUDA device. Fix: use amp = \"auto\", \"bf16\" or \"off\".")
        amp = torch.float16
    else:
        amp = torch.bfloat16
    # NHWC is what cuDNN and oneDNN convolutions prefer: 1.1-1.5x on the CPU too (bench/bench_engine.py)
    channels_last = device.type in ("cuda", "cpu") if t.channels_last == "auto" else t.channels_last == "on"
    return DeviceSetup(device, amp, channels_last)


_nvml_handle = None


def _nvml_utilization(index: int) -> float | None:
    """GPU utilisation in percent through nvidia-ml-py, when it is installed."""
    global _nvml_handle
    try:
        import pynvml
    except ImportError:
        return None
    try:
        if _nvml_handle is None:
            pynvml.nvmlInit()
            _nvml_handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return float(pynvml.nvmlDeviceGetUtilizationRates(_nvml_handle).gpu)
    except Exception:
        return None


def _process_rss() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return None


def memory_and_utilization(device: torch.device) -> tuple[int | None, int | None, float | None]:
    """(memory used, memory total, utilisation %) of the device; host RSS for the CPU."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return total - free, total, _nvml_utilization(device.index or 0)
    if device.type == "cpu":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
        return _process_rss(), total, None
    return None, None, None
