// Level 1: AVX2, FMA and F16C (Intel since Haswell, AMD since Excavator).
#if defined(__x86_64__)
#include <immintrin.h>
#define QK_LEVEL 1
#define QK_SUFFIX avx2
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c"))), apply_to = function)
#include "KernelsImpl.h"
#pragma clang attribute pop
#endif
