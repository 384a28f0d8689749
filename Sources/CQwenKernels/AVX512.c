// Level 2: AVX-512 F/BW/VL/DQ with VNNI (Intel since Cascade Lake, AMD since Zen 4). Never AMX.
#if defined(__x86_64__)
#include <immintrin.h>
#define QK_LEVEL 2
#define QK_SUFFIX avx512
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), apply_to = function)
#include "KernelsImpl.h"
#pragma clang attribute pop
#endif
