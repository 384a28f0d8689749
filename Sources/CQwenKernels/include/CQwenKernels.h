// Header-only C helpers: one quantized block dot product each (static inline intrinsics),
// called from Swift loops. See docs/PERFORMANCE.md for the measurement behind them.
#ifndef CQWENKERNELS_H
#define CQWENKERNELS_H
#include <stdint.h>
#endif
