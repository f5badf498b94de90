// The per-family rows of the architecture table: how each family's config.json keys map onto
// ArchSpec. Both config forms found in the wild are read: transformers 4.x (rotary_pct,
// rotary_emb_base, rope_theta / rope_scaling at top level, torch_dtype) and 5.x (rope_parameters
// with partial_rotary_factor and rope_theta, dtype).
#include <cmath>

#include <nlohmann/json.hpp>

#include "arch/arch_spec.h"
#include "core/error.h"

namespace cascade {

namespace {

using json = nlohmann::json;

// Typed access with errors that name the file and the key.
struct Config {
  const json& j;
  const std::string& source;

  bool has(const char* k) const { return j.contains(k) && !j[k].is_null(); }
  int64_t integer(const char* k) const {
    if (!has(k)) fail(source, ": config.json has no '", k, "'");
    if (!j[k].is_number_integer()) fail(source, ": config.json '", k, "' must be an integer, got ", j[k].dump());
    return j[k].get<int64_t>();
  }
  int64_t integer_or(const char* k, int64_t dflt) const { return has(k) ? integer(k) : dflt; }
  double number_or(const char* k, double dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_number()) fail(source, ": config.json '", k, "' must be a number, got ", j[k].dump());
    return j[k].get<double>();
  }
  bool boolean_or(const char* k, bool dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_boolean()) fail(source, ": config.json '", k, "' must be true or false, got ", j[k].dump());
    return j[k].get<bool>();
  }
  std::string string_or(const char* k, const std::string& dflt) const {
    if (!has(k)) return dflt;
    if (!j[k].is_string()) fail(source, ": config.json '", k, "' must be a string, got ", j[k].dump());
    return j[k].get<std::string>();
  }
  // A rope setting: 5.x keeps it in rope_parameters, 4.x at top level under a family-specific name.
  double rope_number(const char* v5_key, const char* v4_key, double dflt) const {
    if (has("rope_parameters") && j["rope_parameters"].is_object() && j["rope_parameters"].contains(v5_key))
      return Config{j["rope_parameters"], source}.number_or(v5_key, dflt);
    return number_or(v4_key, dflt);
  }
  // The fraction of each head that rotates (rotary_pct, partial_rotary_factor): in (0, 1].
  double rotary_fraction(const char* v5_key, const char* v4_key) const {
    const double f = rope_number(v5_key, v4_key, 1.0);
    if (!(f > 0 && f <= 1)) fail(source, ": config.json '", v4_key, "' = ", f, " is not in (0, 1]");
    return f;
  }
};

Activation activation(const std::string& name, const std::string& source) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "gelu") return Activation::GeluErf;
  if (name == "relu") return Activation::Relu;
  fail(source, ": unsupported activation '", name, "' (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)");
}

int64_t positive(int64_t v, const char* what, const std::string& source) {
  if (v <= 0 || v > (int64_t(1) << 31)) fail(source, ": config.json '", what, "' = ", v, " is out of range");
  return v;
}

RopeScaling rope_scaling(const Config& c) {
  RopeScaling s;
  const json* p = nullptr;
  if (c.has("rope_parameters") && c.j["rope_parameters"].is_object()) p = &c.j["rope_parameters"];
  else if (c.has("rope_scaling") && c.j["rope_scaling"].is_object()) p = &c.j["rope_scaling"];
  if (!p) return s;
  const Config r{*p, c.source};  // typed reads: a string where a number belongs is an Error
  s.type = r.string_or("rope_type", r.string_or("type", "default"));
  if (s.type == "default") return s;
  if (s.type != "linear" && s.type != "llama3")
    fail(c.source, ": unsupported rope scaling type '", s.type, "' (supported: default, linear, llama3)");
  s.factor = r.number_or("factor", 1.0);
  s.low_freq_factor = r.number_or("low_freq_factor", 1.0);
  s.high_freq_factor = r.number_or("high_freq_factor", 4.0);
  s.original_max_position = r.number_or("original_max_position_embeddings", 8192.0);
  return s;
}

void gpt2(const Config& c, ArchSpec& a) {
  a.vocab_size = c.integer("vocab_size");
  a.d_model = c.integer("n_embd");
  a.n_layers = c.integer("n_layer");
  a.n_heads = c.integer("n_head");
  a.d_ff = c.integer_or("n_inner", 4 * positive(a.d_model, "n_embd", c.source));
  a.max_positions = c.integer("n_positions");
  a.norm_eps = c.number_or("layer_norm_epsilon", 1e-5);
  a.act = activation(c.string_or("activation_function", "gelu_new"), c.source);
  a.learned_positions = true;
  if (c.boolean_or("scale_attn_by_inverse_layer_idx", false) || c.boolean_or("reorder_and_upcast_attn", false))
    fail(c.source, ": GPT-2 options scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
  if (!c.boolean_or("scale_attn_weights", true)) fail(c.source, ": scale_attn_weights=false is not supported");
}

void opt(const Config& c, ArchSpec& a) {
  a.vocab_size = c.integer("vocab_size");
  a.d_model = c.integer("hidden_size");
  a.d_embed = c.integer_or("word_embed_proj_dim", a.d_model);
  a.n_layers = c.integer("num_hidden_layers");
  a.n_heads = c.integer("num_attention_heads");
  a.d_ff = c.integer("ffn_dim");
  a.max_positions = c.integer("max_position_embeddings");
  a.act = activation(c.string_or("activation_function", "relu"), c.source);
  a.pre_norm = c.boolean_or("do_layer_norm_before", true);
  a.final_norm = a.pre_norm && !c.boolean_or("_remove_final_layer_norm", false);
  a.learned_positions = true;
  a.position_offset = 2;
  if (!c.boolean_or("enable_bias", true)) fail(c.source, ": OPT with enable_bias=false is not supported");
  if (!c.boolean_or("layer_norm_elementwise_affine", true))
    fail(c.source, ": OPT with layer_norm_elementwise_affine=false is not supported");
}

void gptj(const Config& c, ArchSpec& a) {
  a.vocab_size = c.integer("vocab_size");
  a.d_model = c.integer("n_embd");
  a.n_layers = c.integer("n_layer");
  a.n_heads = c.integer("n_head");
  a.d_ff = c.integer_or("n_inner", 4 * positive(a.d_model, "n_embd", c.source));
  a.max_positions = c.integer("n_positions");
  a.norm_eps = c.number_or("layer_norm_epsilon", 1e-5);
  a.act = activation(c.string_or("activation_function", "gelu_new"), c.source);
  a.residual = Residual::ParallelShared;
  a.rotary = RotaryStyle::Interleaved;
  a.tied_head = false;
  a.head_dim = a.d_model / std::max<int64_t>(1, a.n_heads);
  a.rotary_dim = c.has("rotary_dim") ? c.integer("rotary_dim") : a.head_dim;
  a.rope_theta = c.rope_number("rope_theta", "rope_theta", 10000.0);
}

void neox(const Config& c, ArchSpec& a) {
  a.vocab_size = c.integer("vocab_size");
  a.d_model = c.integer("hidden_size");
  a.n_layers = c.integer("num_hidden_layers");
  a.n_heads = c.integer("num_attention_heads");
  a.d_ff = c.integer("intermediate_size");
  a.max_positions = c.integer("max_position_embeddings");
  a.norm_eps = c.number_or("layer_norm_eps", 1e-5);
  a.act = activation(c.string_or("hidden_act", "gelu"), c.source);
  a.residual = c.boolean_or("use_parallel_residual", true) ? Residual::ParallelTwoNorms : Residual::Sequential;
  a.rotary = RotaryStyle::Half;
  a.tied_head = c.boolean_or("tie_word_embeddings", false);
  a.head_dim = a.d_model / std::max<int64_t>(1, a.n_heads);
  a.rotary_dim = int64_t(double(a.head_dim) * c.rotary_fraction("partial_rotary_factor", "rotary_pct"));
  a.rope_theta = c.rope_number("rope_theta", "rotary_emb_base", 10000.0);
  a.rope_scaling = rope_scaling(c);
  if (!c.boolean_or("attention_bias", true)) fail(c.source, ": GPT-NeoX with attention_bias=false is not supported");
}

void llama(const Config& c, ArchSpec& a) {
  a.vocab_size = c.integer("vocab_size");
  a.d_model = c.integer("hidden_size");
  a.n_layers = c.integer("num_hidden_layers");
  a.n_heads = c.integer("num_attention_heads");
  a.n_kv_heads = c.integer_or("num_key_value_heads", a.n_heads);
  a.d_ff = c.integer("intermediate_size");
  a.max_positions = c.integer_or("max_position_embeddings", 2048);
  a.norm = NormKind::RMSNorm;
  a.norm_eps = c.number_or("rms_norm_eps", 1e-6);
  const std::string act = c.string_or("hidden_act", "silu");
  if (act == "silu") a.act = Activation::SiluGlu;
  else if (act == "gelu_pytorch_tanh" || act == "gelu_new") a.act = Activation::GeluTanhGlu;
  else fail(c.source, ": unsupported Llama hidden_act '", act, "'");
  a.rotary = RotaryStyle::Half;
  a.tied_head = c.boolean_or("tie_word_embeddings", false);
  a.head_dim = c.integer_or("head_dim", a.d_model / std::max<int64_t>(1, a.n_heads));
  a.rotary_dim = int64_t(double(a.head_dim) * c.rotary_fraction("partial_rotary_factor", "partial_rotary_factor"));
  a.rope_theta = c.rope_number("rope_theta", "rope_theta", 10000.0);
  a.rope_scaling = rope_scaling(c);
  if (c.boolean_or("attention_bias", false) || c.boolean_or("mlp_bias", false))
    fail(c.source, ": Llama with attention_bias or mlp_bias is not supported");
}

// The table: model_type -> reader of that family's config keys.
struct Family {
  const char* model_type;
  void (*read)(const Config&, ArchSpec&);
};
constexpr Family kFamilies[] = {
    {"gpt2", gpt2}, {"opt", opt}, {"gptj", gptj}, {"gpt_neox", neox}, {"llama", llama},
};

}  // namespace

ArchSpec arch_from_config(const json& config, const std::string& source) {
  if (!config.is_object()) fail(source, ": config.json is not a JSON object");
  const Config c{config, source};
  ArchSpec a;
  a.model_type = c.string_or("model_type", "");
  const Family* fam = nullptr;
  for (const auto& f : kFamilies)
    if (a.model_type == f.model_type) fam = &f;
  if (!fam)
    fail(source, ": unknown architecture model_type '", a.model_type,
         "' (supported: gpt2, opt, gptj, gpt_neox, llama)");
  fam->read(c, a);
  a.config_dtype = c.string_or("dtype", c.string_or("torch_dtype", ""));
  if (a.tied_head) a.tied_head = c.boolean_or("tie_word_embeddings", true);
  positive(a.vocab_size, "vocab_size", source);
  positive(a.d_model, "hidden size", source);
  positive(a.n_layers, "number of layers", source);
  positive(a.n_heads, "number of heads", source);
  positive(a.d_ff, "feed-forward size", source);
  positive(a.max_positions, "max positions", source);
  if (a.d_embed == 0) a.d_embed = a.d_model;
  if (a.n_kv_heads == 0) a.n_kv_heads = a.n_heads;
  if (a.head_dim == 0) {
    if (a.d_model % a.n_heads) fail(source, ": hidden size ", a.d_model, " is not divisible by ", a.n_heads, " heads");
    a.head_dim = a.d_model / a.n_heads;
  }
  positive(a.d_embed, "embedding size", source);
  positive(a.n_kv_heads, "number of key/value heads", source);
  positive(a.head_dim, "head size", source);
  if (a.n_heads % a.n_kv_heads)
    fail(source, ": ", a.n_heads, " attention heads are not a multiple of ", a.n_kv_heads, " key/value heads");
  if (a.rotary != RotaryStyle::None && (a.rotary_dim <= 0 || a.rotary_dim > a.head_dim || a.rotary_dim % 2))
    fail(source, ": rotary dimension ", a.rotary_dim, " is invalid for head size ", a.head_dim);
  if (!(a.norm_eps > 0) || !std::isfinite(a.norm_eps)) fail(source, ": normalisation epsilon must be positive");
  if (!(a.rope_theta > 0) || !std::isfinite(a.rope_theta)) fail(source, ": rope theta must be positive");
  return a;
}

nlohmann::json ArchSpec::describe() const {
  static const char* kRes[] = {"sequential", "parallel (shared norm)", "parallel (two norms)"};
  static const char* kAct[] = {"gelu_tanh", "gelu_erf", "relu", "silu_glu", "gelu_tanh_glu"};
  static const char* kRot[] = {"none", "interleaved", "half"};
  json j = {{"model_type", model_type},
            {"vocab_size", vocab_size},
            {"d_model", d_model},
            {"d_embed", d_embed},
            {"n_layers", n_layers},
            {"n_heads", n_heads},
            {"n_kv_heads", n_kv_heads},
            {"head_dim", head_dim},
            {"d_ff", d_ff},
            {"max_positions", max_positions},
            {"norm", norm == NormKind::LayerNorm ? "layernorm" : "rmsnorm"},
            {"norm_eps", norm_eps},
            {"norm_position", pre_norm ? "pre" : "post"},
            {"final_norm", final_norm},
            {"residual", kRes[int(residual)]},
            {"activation", kAct[int(act)]},
            {"positions", learned_positions ? "learned" : "rotary"},
            {"position_offset", position_offset},
            {"rotary", kRot[int(rotary)]},
            {"rotary_dim", rotary_dim},
            {"rope_theta", rope_theta},
            {"rope_scaling", rope_scaling.type},
            {"tied_head", tied_head},
            {"config_dtype", config_dtype}};
  if (rope_scaling.type != "default") j["rope_scaling_factor"] = rope_scaling.factor;
  return j;
}

}  // namespace cascade
