#!/usr/bin/env python3
"""Generate dequantization fixtures for Tests/QwenKernelsTests from gguf-py's reference.

Rerun (from the repository root):

    /work/venv/bin/python scripts/make-quant-fixtures.py

(any Python with the `gguf` and `numpy` packages works). For each type it writes
Tests/QwenKernelsTests/Fixtures/<TYPE>.blocks  (raw block bytes) and
Tests/QwenKernelsTests/Fixtures/<TYPE>.f32     (little-endian float32, gguf.quants.dequantize).

Blocks come from gguf.quants.quantize on random floats where gguf-py implements quantization
for the type; otherwise (the K quants) from random bytes with the f16 scale fields set to sane
finite values, since random bytes there could be NaN or infinity. The output is deterministic
(fixed seed), so rerunning reproduces the committed files unless gguf-py changes.
"""
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf import quants

OUT = Path(__file__).resolve().parent.parent / "Tests" / "QwenKernelsTests" / "Fixtures"

# Byte offsets of the f16 fields (d, m, dmin) within a block, for types filled from random bytes.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q5_0: [0], T.Q8_0: [0],
    T.Q4_1: [0, 2], T.Q5_1: [0, 2], T.Q4_K: [0, 2], T.Q5_K: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q6_K: [208],
}

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def make_blocks(qtype: T, rng: np.random.Generator) -> np.ndarray:
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    # A few blocks: 8 for 256-weight types, 32 for 32-weight types, 256 values for floats.
    count = 2048 if block_size == 256 else 1024 if block_size == 32 else 256
    data = (rng.standard_normal(count) * rng.uniform(0.01, 2.0)).astype(np.float32)
    data[:4] = [0.0, -0.0, 1.0, -1.5]  # a few exact values at the start
    try:
        return quants.quantize(data.reshape(1, -1), qtype).reshape(-1).view(np.uint8)
    except NotImplementedError:
        pass
    n_blocks = count // block_size
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for offset in HALF_FIELDS[qtype]:
        halves = rng.uniform(-0.05, 0.05, size=n_blocks).astype(np.float16)
        raw[:, offset:offset + 2] = halves.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    for qtype in TYPES:
        blocks = make_blocks(qtype, rng)
        expected = quants.dequantize(blocks.reshape(1, -1), qtype).astype("<f4").reshape(-1)
        assert np.all(np.isfinite(expected)), qtype.name
        (OUT / f"{qtype.name}.blocks").write_bytes(blocks.tobytes())
        (OUT / f"{qtype.name}.f32").write_bytes(expected.tobytes())
        print(f"{qtype.name:5} {blocks.size:6} bytes -> {expected.size} floats")


if __name__ == "__main__":
    main()
