// The negative log-likelihood of a target token under a row of logits, -log softmax(logits)[target],
// in float64 with the row's maximum subtracted first. The CPU op is here (token_nll.cc); its GPU twin
// over many rows is ops::gpu::token_nll (cuda_ops.h), so a perplexity on the GPU brings back one
// number a row instead of the row's logits.
#pragma once
#include <cstdint>

namespace cascade::ops {

double token_nll(const float* logits, int64_t vocab, int32_t target);

}  // namespace cascade::ops
