// The attention core shared by exact attention and ADA's compressed attention: softmax(q k^T * scale
// + bias) v per head, with causality by position (key j is visible to query i iff k_pos[j] <=
// q_pos[i], and inside the optional window) and grouped-query heads (query head h reads key/value
// head h / (heads / kv_heads)).
// One argument struct for both devices: host pointers in float32 for ops::attention, device
// pointers in any compute dtype for ops::gpu::attention (ops/cuda_ops.h).
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace cascade::ops {

// Which GPU kernel runs the plain causal case (AttentionArgs::causal_by_index): automatic takes
// cuDNN's fused attention where it applies and its library loads (ops/attention_cudnn.h), else
// Cascade's own kernel; cascade always takes Cascade's; cudnn takes cuDNN's wherever it applies and
// fails (cascade::Error) where it cannot run there. Every other case runs Cascade's kernel.
enum class AttentionKernel { automatic, cascade, cudnn };
AttentionKernel parse_attention_kernel(const std::string& name);  // "auto" | "cascade" | "cudnn"
const char* attention_kernel_name(AttentionKernel k);

struct AttentionArgs {
  DType dtype = DType::F32;  // of q, k, v, the own keys and out (the CPU takes F32 only)
  const void* q = nullptr;   // [nq, heads * head_dim], row stride ldq (elements)
  int64_t ldq = 0, nq = 0;
  const void* k = nullptr;   // [nk, kv_heads * head_dim], row stride ldkv
  const void* v = nullptr;
  int64_t ldkv = 0, nk = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  const int64_t* q_pos = nullptr;  // [nq]
  const int64_t* k_pos = nullptr;  // [nk]
  // k_pos nondecreasing (a KV cache, ADA's sorted representatives): the GPU's query tiles stop at
  // the first key tile past their last position.
  bool keys_sorted = true;
  const float* bias = nullptr;     // optional float32 [nq, nk] row stride ldbias, added to the scaled
  int64_t ldbias = 0;              // logits; -infinity hides a key; none applies to an own key
  // Optional sliding window (ADA's sinks/window variant: its sinks and representatives are pinned,
  // every other token's key is seen only inside the window). With window > 0, key j visible by
  // position is seen by query i only if q_pos[i] - k_pos[j] < window or key_pinned[j] != 0
  // (key_pinned [nk] may be null: the window alone). A window only hides keys, so keys_sorted's early
  // stop still holds; the own key is never hidden.
  int64_t window = 0;
  const uint8_t* key_pinned = nullptr;
  // Optional private key per query (ADA `all-queries`: a non-representative also attends to itself):
  // where own_mask[i] != 0, query i additionally sees own_k / own_v row i ([nq, kv_heads*head_dim],
  // row stride ldown).
  const void* own_k = nullptr;
  const void* own_v = nullptr;
  int64_t ldown = 0;
  const uint8_t* own_mask = nullptr;
  float scale = 1.f;
  void* out = nullptr;             // [nq, heads * head_dim], row stride ldo
  int64_t ldo = 0;
  // The caller states that the positions make the attention causal in index space, bottom right:
  // query i sees exactly the keys j <= i + nk - nq (an exact prefill or a chunk continuing a cache),
  // with no bias, window or own key. The GPU may then run a kernel that never reads the positions
  // (cuDNN's, one plan per shape: stated where a shape recurs); the result is the same within the
  // dtype's rounding, and the same kernel runs a given shape every time.
  bool causal_by_index = false;
  AttentionKernel kernel = AttentionKernel::automatic;  // the GPU's choice for that case
};

// On the CPU (dtype F32, host memory). Every query must see at least one key (its own position, in
// all callers).
void attention(const AttentionArgs& a);

}  // namespace cascade::ops
