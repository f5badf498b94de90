// The linear op's path for a decoding step's few rows (ops/gemv_cuda.cu), chosen by ops/linear_cuda.cu,
// and the GLU feed-forward's (linear_glu).
#pragma once
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

// Whether gemv() takes these arguments: 16-bit operands, 1 to kGemvMaxRows rows, rows of x and W read
// in 16-byte pieces (in and ldx multiples of 8, x and W 16-byte aligned).
constexpr int64_t kGemvMaxRows = 4;
bool gemv_fits(const LinearArgs& a);
// y = act(x W^T + b), as linear() computes it, for arguments gemv_fits() takes.
void gemv(const LinearArgs& a, Stream s);
// Whether gemv_glu() takes these arguments: the gate's as gemv_fits(), output in t, no epilogue, Wu aligned
// as Wg.
bool gemv_glu_fits(const GluArgs& a);
// linear_glu() in one pass over both weights, for arguments gemv_glu_fits() takes.
void gemv_glu(const GluArgs& a, Stream s);

}  // namespace cascade::ops::gpu
