// The attention core shared by exact attention and ADA's compressed attention: softmax(q k^T * scale
// + bias) v per head, with causality by position (key j is visible to query i iff k_pos[j] <=
// q_pos[i]) and grouped-query heads (query head h reads key/value head h / (heads / kv_heads)).
#pragma once
#include <cstdint>

namespace cascade::ops {

struct AttentionArgs {
  const float* q = nullptr;  // [nq, heads * head_dim], row stride ldq
  int64_t ldq = 0, nq = 0;
  const float* k = nullptr;  // [nk, kv_heads * head_dim], row stride ldkv
  const float* v = nullptr;
  int64_t ldkv = 0, nk = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  const int64_t* q_pos = nullptr;  // [nq]
  const int64_t* k_pos = nullptr;  // [nk]
  const float* bias = nullptr;     // optional [nq, nk] row stride ldbias, added to the scaled logits;
  int64_t ldbias = 0;              // -infinity hides a key
  // Optional private key per query (ADA `all-queries`: a non-representative also attends to itself):
  // where own_mask[i] != 0, query i additionally sees own_k / own_v row i ([nq, kv_heads*head_dim],
  // row stride ldown); no bias applies to it (it stands for itself alone).
  const float* own_k = nullptr;
  const float* own_v = nullptr;
  int64_t ldown = 0;
  const uint8_t* own_mask = nullptr;
  float scale = 1.f;
  float* out = nullptr;            // [nq, heads * head_dim], row stride ldo
  int64_t ldo = 0;
};

// Every query must see at least one key (its own position, in all callers).
void attention(const AttentionArgs& a);

}  // namespace cascade::ops
