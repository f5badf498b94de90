// The attention op's contract (ops/attention.h) stated plainly in float64, for float32 host
// arguments: which keys a query sees (position, sliding window, pinned keys), then softmax(q k^T *
// scale + bias) v over them and the own key. The CPU op is held against it (attention_op_test.cc) and
// the GPU op's stage-wise rounded bound (cuda_ops_test.cc) uses the same visibility rule.
#pragma once
#include <cstdint>
#include <vector>

#include "ops/attention.h"

namespace cascade::test {

// Whether query i sees key j: k_pos[j] <= q_pos[i] and, with a window, q_pos[i] - k_pos[j] < window
// or key j pinned. (A bias of -infinity hides a key too; the reference gets that from the
// exponential, not from here.)
bool attention_sees(const ops::AttentionArgs& a, int64_t i, int64_t j);

// The output [nq, heads * head_dim] (dense rows) of the op with arguments a, in float64.
std::vector<double> attention_reference(const ops::AttentionArgs& a);

}  // namespace cascade::test
