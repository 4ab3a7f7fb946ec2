"""Which autocast dtype training uses on which hardware.

bf16 autocast pays on the CPU only where the CPU computes in bf16 natively (AVX512-BF16 or AMX).
Elsewhere oneDNN emulates it: on an AVX2-only AMD EPYC a 128 px Fader step ran 13x slower and a
ResNet-18 step 17x slower than plain fp32. So "auto" picks bf16 on such CPUs and fp32 on the rest,
and a forced half precision on a CPU without it is reported.
"""
from __future__ import annotations

from typing import Optional

import torch

AMP_MODES = ("auto", "off", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # a private probe that changed or failed: assume no native bf16
            pass
    return False


def amp_dtype(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for an --amp mode on `device`, or None for plain fp32.

    "auto": bf16 on CUDA where supported (else fp16), bf16 on a CPU with native bf16, else fp32.
    """
    if mode not in AMP_MODES:
        raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    device = torch.device(device)
    if mode == "off":
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    return torch.bfloat16 if mode == "bf16" else torch.float16


def slow_amp_warning(mode: str, device: torch.device) -> Optional[str]:
    """A one-line warning when `mode` forces half precision on a CPU that emulates it, else None."""
    if torch.device(device).type == "cpu" and mode in ("bf16", "fp16") and not cpu_has_native_bf16():
        return (f"--amp {mode} on a CPU without native bf16 (AVX512-BF16/AMX) is emulated and runs about "
                f"10x slower than fp32; --amp auto uses fp32 here")
    return None
