// arm64 with the dot-product instructions (FEAT_DotProd: Apple M1 and later, Graviton 2 and later,
// Cortex-A76/X1 and later): level 0's C kernels, fused multiply-adds, and the NEON panel kernels.
#if defined(__aarch64__)
#include <arm_neon.h>
#define QK_LEVEL 0
#define QK_NEON 1
#define QK_SUFFIX dotprod
#pragma clang attribute push(__attribute__((target("dotprod"))), apply_to = function)
#include "KernelsImpl.h"
#pragma clang attribute pop
#endif
