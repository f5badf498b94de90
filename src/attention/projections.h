// Q/K/V and output projections of one layer, shared by exact attention and ADA (which runs them on
// representative rows only).
#pragma once
#include <cstdint>

#include "attention/layer_attention.h"

namespace cascade {

// x: [n, d] -> q: [n, H*hd], k, v: [n, Hkv*hd] (contiguous), rotary applied at positions pos.
void project_qkv(const AttentionContext& c, const float* x, int64_t n, const int64_t* pos, float* q, float* k, float* v);
// x: [n, d] -> k: [n, Hkv*hd], the keys alone, rotary applied at positions pos (ADA's keys features).
void project_keys(const AttentionContext& c, const float* x, int64_t n, const int64_t* pos, float* k);
// attn: [n, H*hd] -> out: [n, d] (output projection with bias).
void project_out(const AttentionContext& c, const float* attn, int64_t n, float* out);
float attention_scale(const ArchSpec& a);

}  // namespace cascade
