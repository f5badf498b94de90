// y = x W^T + b for a batch of rows, through BLAS (sgemm), in either stored orientation.
#pragma once
#include <cstdint>

#include "arch/weights.h"

namespace cascade::ops {

// x: [n, l.in] row stride ldx; y: [n, l.out] row stride ldy (overwritten).
void linear(const Linear& l, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy);

// y[i] += x[i] for n values.
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace cascade::ops
