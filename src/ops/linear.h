// y = x W^T + b for a batch of rows, through BLAS (sgemm), in either stored orientation.
#pragma once
#include <cstdint>

namespace cascade::ops {

// A float32 weight matrix read in place, in its stored orientation: W [out, in] with row stride ld,
// or [in, out] when in_major (GPT-2's Conv1D; its fused c_attn is addressed as three column blocks
// of one matrix); bias [out] or null.
struct MatrixView {
  const float* w = nullptr;
  int64_t ld = 0;
  bool in_major = false;
  int64_t in = 0, out = 0;
  const float* bias = nullptr;
  bool present() const { return w != nullptr; }
};

// x: [n, l.in] row stride ldx; y: [n, l.out] row stride ldy (overwritten).
void linear(const MatrixView& l, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy);

// y[i] += x[i] for n values.
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace cascade::ops
