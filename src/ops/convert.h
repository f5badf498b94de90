// Dtype conversion of a weight matrix, with an optional transpose: the step between a checkpoint's
// stored bytes and the compute dtype. The GPU runs its twin (ops::gpu::convert, ops/convert_cuda.cu)
// on bytes copied from the memory map, so that nothing is widened on the host.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace cascade::ops {

// src: a packed row-major [rows, cols] matrix of dtype `from`; writes each element in dtype `to`
// (F32, F16 or BF16; narrowing rounds to nearest even) at dst[r * ld + c], or at dst[c * ld + r]
// when transposed (GPT-2's Conv1D weights, stored [in, out], into [out, in]).
void convert(DType from, const void* src, int64_t rows, int64_t cols, DType to, void* dst, int64_t ld, bool transpose);

}  // namespace cascade::ops
