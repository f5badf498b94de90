// ArchSpec: everything that differs between the supported families, as data read from config.json
// (never keyed on a model name). One generic decoder (model/) runs every family from this table;
// arch_table.cc holds the per-family rows: how config keys map to these fields and how Hugging Face
// tensor names map to the decoder's weights.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "ops/activation.h"
#include "ops/norm.h"
#include "ops/rotary.h"

namespace cascade {

// Sequential: h += attn(n1(h)); h += mlp(n2(h)).  ParallelShared (GPT-J): h += attn(n1(h)) + mlp(n1(h)).
// ParallelTwoNorms (GPT-NeoX): h += attn(n1(h)) + mlp(n2(h)).
enum class Residual { Sequential, ParallelShared, ParallelTwoNorms };
struct ArchSpec {
  std::string model_type;       // config.json model_type: gpt2, opt, gptj, gpt_neox, llama
  int64_t vocab_size = 0;
  int64_t d_model = 0;          // residual width
  int64_t d_embed = 0;          // token-embedding width (OPT word_embed_proj_dim; else d_model)
  int64_t n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, d_ff = 0;
  int64_t max_positions = 0;    // context length the checkpoint supports
  NormKind norm = NormKind::LayerNorm;
  double norm_eps = 1e-5;
  bool pre_norm = true;         // false: OPT with do_layer_norm_before=false (post-LN)
  bool final_norm = true;
  Residual residual = Residual::Sequential;
  Activation act = Activation::GeluTanh;
  bool learned_positions = false;
  int64_t position_offset = 0;  // OPT's learned positions start at index 2
  RotaryStyle rotary = RotaryStyle::None;
  int64_t rotary_dim = 0;       // leading dims of each head that rotate
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tied_head = true;
  std::string config_dtype;     // torch_dtype / dtype, informational

  // Every hyper-parameter as read, for `cascade inspect`.
  nlohmann::json describe() const;
  // The rotary position embedding of this architecture (disabled without one).
  ops::Rotary rotary_embedding() const { return ops::Rotary(rotary, rotary_dim, rope_theta, rope_scaling); }
};

// Reads a config.json (either the transformers 4.x or 5.x form) into an ArchSpec; throws
// cascade::Error naming `source` for an unknown model_type, a missing key or an unsupported option.
ArchSpec arch_from_config(const nlohmann::json& config, const std::string& source);

}  // namespace cascade
