// Level 0: the architecture's baseline (SSE2 on x86-64, plain C elsewhere).
// The 8-lane accumulators are passed only between static inline helpers: no ABI crosses here.
#pragma clang diagnostic ignored "-Wpsabi"
#define QK_LEVEL 0
#define QK_SUFFIX generic
#include "KernelsImpl.h"
