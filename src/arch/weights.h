// The generic decoder's weights. Every family's tensors land in these structs (arch/load_weights.cc
// maps the names); the decoder never looks at a name. Linear keeps the stored orientation so that
// float32 checkpoints are used in place from the memory map (GPT-2's Conv1D stores [in, out], and its
// fused c_attn is addressed as three column blocks of one matrix).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/linear.h"

namespace cascade {

// The view ops::linear reads, and the memory that keeps it alive.
struct Linear : ops::MatrixView {
  Tensor storage, bias_storage;
};

struct Norm {
  Tensor weight, bias;  // bias empty for RMSNorm
  bool present() const { return !weight.empty(); }
  const float* gamma() const { return weight.data(); }
  const float* beta() const { return bias.empty() ? nullptr : bias.data(); }
};

struct LayerWeights {
  Norm norm1, norm2;           // norm2 absent for GPT-J (one norm feeds both branches)
  Linear q, k, v, o;
  Linear up, gate, down;       // gate only for GLU activations
};

struct ModelWeights {
  Tensor embed;                // [V, d_embed]
  Tensor positions;            // [P, d_model] learned positions, or empty
  Linear project_in, project_out;  // OPT when word_embed_proj_dim != hidden_size
  std::vector<LayerWeights> layers;
  Norm final_norm;
  Linear head;                 // [V, d_embed]; the embedding when tied
};

}  // namespace cascade
