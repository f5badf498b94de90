// The generic decoder's weights, in two forms. Every family's tensors land in these structs
// (arch/load_weights.cc maps the names); the decoders never look at a name.
// - StoredWeights: the checkpoint's tensors as stored (typed views of the memory map, F32/F16/BF16),
//   with where each linear layer sits inside them; nothing is read or converted. The GPU uploads
//   from these (model/device_weights_cuda.cu).
// - ModelWeights: the CPU engine's float32 weights, widened from StoredWeights (widen_weights).
//   Linear keeps the stored orientation so that float32 checkpoints are used in place from the
//   memory map (GPT-2's Conv1D stores [in, out], and its fused c_attn is addressed as three column
//   blocks of one matrix).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weights.h"
#include "ops/linear.h"

namespace cascade {

// A linear layer as the checkpoint stores it: output j's weights are row r(j) of w [rows, in]
// (torch.nn.Linear), or column r(j) of w [in, cols] when in_major (GPT-2's Conv1D), where
// r(j) = first + j, or, for GPT-NeoX's per-head fused QKV, blocks of `block` outputs every
// `block_stride` rows: r(j) = first + (j / block) * block_stride + j % block. The bias (or
// none) is indexed by r(j) too.
struct StoredLinear {
  TensorView w, b;
  bool in_major = false;
  int64_t in = 0, out = 0;
  int64_t first = 0, block = 0, block_stride = 0;  // block 0: one block of `out` rows
  bool present() const { return !w.empty(); }
  int64_t source_row(int64_t j) const { return block ? first + (j / block) * block_stride + j % block : first + j; }
};

struct StoredNorm {
  TensorView weight, bias;  // bias empty for RMSNorm
  bool present() const { return !weight.empty(); }
};

struct StoredLayer {
  StoredNorm norm1, norm2;
  StoredLinear q, k, v, o;
  StoredLinear up, gate, down;
};

struct StoredWeights {
  std::string path;             // the checkpoint, for messages
  TensorView embed;             // [V, d_embed]
  TensorView positions;         // [P, d_model] learned positions, or empty
  StoredLinear project_in, project_out;
  std::vector<StoredLayer> layers;
  StoredNorm final_norm;
  StoredLinear head;            // [V, d_embed]; the embedding when head_tied
  bool head_tied = false;
};

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

// The CPU engine's float32 weights: each stored tensor widened once (f32 used in place), shared by
// every linear that reads it (GPT-2's c_attn by Q, K and V; a tied head by the embedding). NeoX's
// per-head blocks are gathered into one owned [out, in] matrix each.
ModelWeights widen_weights(const StoredWeights& w);

}  // namespace cascade
