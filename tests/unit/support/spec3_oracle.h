// SPEC sections 3 and 4 stated plainly: ADA's compressed attention of one layer, in float64, with
// no code of the engine's plan or attention (only the layer's weights and the rotary frequencies
// are read from the model). Slow and obviously correct: every token's Q, K, V computed from its
// features at its own position, every score written out, n_s(t) counted from the parents directly.
// The tests (ada_oracle_test.cc) hold the engine's recorded layer outputs against it on the
// engine's own selections: prefill, and decoding continued one token at a time (SPEC 4: the same
// sequence, the same outputs). Also the SPEC-6 variants of the plan: reconstruct lstsq (z computed
// here with the Pearson rule, the least squares by modified Gram-Schmidt, not the engine's Cholesky)
// and sinks / window (the key set of each query written out).
#pragma once
#include <cstdint>
#include <vector>

#include "arch/arch_spec.h"
#include "arch/weights.h"
#include "attention/ada_plan.h"
#include "ops/rotary.h"
#include "select/selection.h"

namespace cascade::test {

// The keys after rotary [T, n_kv_heads * head_dim] of tokens 0..T-1 (token t at position t) in
// float64: ADA's selection features under --ada-features keys (SPEC 6).
std::vector<double> spec3_keys(const ArchSpec& a, const LayerWeights& w, const ops::Rotary& rotary,
                               const std::vector<float>& x, int64_t T);

// A selection that keeps every token: what a dense layer (--ada-dense-layers) computes, under which
// spec3_attention is exact attention.
select::Selection every_token(int64_t T);

// The attention sub-layer outputs [T, d] of tokens 0..T-1 (token t at position t, features
// x [T, d]) under selection sel (its reps and parent vector cover all T tokens), with the plan's
// options o (queries, proportional, reconstruct, sinks, window; Pearson features for lstsq).
std::vector<double> spec3_attention(const ArchSpec& a, const LayerWeights& w, const ops::Rotary& rotary,
                                    const std::vector<float>& x, int64_t T, const select::Selection& sel,
                                    const AdaPlanOptions& o);

}  // namespace cascade::test
