"""Which autocast dtype training uses on which hardware.

bf16 autocast pays on the CPU only where the CPU computes in bf16 natively (AVX512-BF16 or AMX).
Elsewhere oneDNN emulates it: on an AVX2-only AMD EPYC a 128 px Fader step ran 13x slower and a
ResNet-18 step 17x slower than plain fp32. fader-train's "auto" stays fp32 on every CPU (as
before); the judge and slider-classifier fits use bf16 only where it is native; a forced half
precision on a CPU that emulates it is reported.
"""
from __future__ import annotations

from typing import Optional

import torch

from core.errors import FaderError

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
    """fader-train's autocast dtype for an --amp mode on `device`, or None for plain fp32.

    "auto": bf16 on CUDA where supported (else fp16), fp32 on the CPU.
    """
    if mode not in AMP_MODES:
        raise FaderError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}")
    device = torch.device(device)
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def fit_uses_bf16(mode) -> bool:
    """Whether a CPU fit (judge, slider classifier) runs under bf16 autocast: "auto" where the CPU
    has native bf16, "bf16" always, "off" never (True/False mean "bf16"/"off")."""
    if isinstance(mode, bool):
        return mode
    if mode not in ("auto", "bf16", "off"):
        raise FaderError(f"amp must be auto, bf16 or off, got {mode!r}")
    return mode == "bf16" or (mode == "auto" and cpu_has_native_bf16())


def slow_amp_warning(mode: str, device: torch.device) -> Optional[str]:
    """A one-line warning when `mode` forces half precision on a CPU that emulates it, else None."""
    if torch.device(device).type == "cpu" and mode in ("bf16", "fp16") and not cpu_has_native_bf16():
        return (f"--amp {mode} on a CPU without native bf16 (AVX512-BF16/AMX) is emulated and runs about "
                f"10x slower than fp32; --amp off (or auto) runs in fp32")
    return None
