// The name half of the architecture table: for each family, which Hugging Face tensors make up the
// embeddings, each layer's norms / projections / MLP and the head, and in which orientation they are
// stored. Shapes are checked here so that a wrong checkpoint fails with a message naming the tensor.
#include "arch/load_weights.h"

#include <string>
#include <utility>

#include "core/error.h"

namespace cascade {

namespace {

class Loader {
 public:
  Loader(const ArchSpec& a, const WeightSource& s) : a_(a), src_(s) {}

  // The tensor under the first name that exists (families differ in prefixes, e.g. GPT-2 checkpoints
  // saved from GPT2Model have no "transformer."), checked against the expected shape.
  TensorView get(const std::vector<std::string>& names, std::vector<int64_t> shape) const {
    for (const auto& n : names) {
      if (!src_.has(n)) continue;
      TensorView t = src_.load(n);
      if (t.shape != shape) {
        Tensor got = Tensor::view(nullptr, t.shape, nullptr), want = Tensor::view(nullptr, shape, nullptr);
        fail(src_.path(), ": tensor '", n, "' has shape ", got.shape_str(), ", expected ", want.shape_str());
      }
      return t;
    }
    fail(src_.path(), ": tensor '", names.front(), "' is missing from the checkpoint");
  }
  TensorView get(const std::string& name, std::vector<int64_t> shape) const { return get(std::vector{name}, shape); }
  bool has(const std::string& name) const { return src_.has(name); }

  // A Linear stored [out, in] (torch.nn.Linear).
  StoredLinear linear(const std::string& w, const std::string& b, int64_t in, int64_t out) const {
    StoredLinear l;
    l.w = get(w, {out, in});
    l.in = in;
    l.out = out;
    if (!b.empty()) l.b = get(b, {out});
    return l;
  }

  StoredNorm norm(const std::string& prefix, int64_t d) const {
    StoredNorm n;
    n.weight = get(prefix + ".weight", {d});
    if (a_.norm == NormKind::LayerNorm) n.bias = get(prefix + ".bias", {d});
    return n;
  }

  const ArchSpec& a_;
  const WeightSource& src_;
};

// A column block [col0, col0 + out) of a Conv1D weight stored [in, total_out] (GPT-2).
StoredLinear conv1d_block(const TensorView& w, const TensorView& b, int64_t col0, int64_t out) {
  StoredLinear l;
  l.w = w;
  l.b = b;
  l.in_major = true;
  l.in = w.shape[0];
  l.out = out;
  l.first = col0;
  return l;
}

// Rows [h*3hd + part*hd, +hd) of every head h of GPT-NeoX's fused per-head QKV.
StoredLinear neox_part(const TensorView& w, const TensorView& b, int part, int64_t H, int64_t hd) {
  StoredLinear l;
  l.w = w;
  l.b = b;
  l.in = w.shape[1];
  l.out = H * hd;
  l.first = part * hd;
  l.block = hd;
  l.block_stride = 3 * hd;
  return l;
}

StoredLinear tied(const TensorView& embed) {
  StoredLinear l;
  l.w = embed;
  l.in = embed.shape[1];
  l.out = embed.shape[0];
  return l;
}

void load_gpt2(const Loader& L, const ArchSpec& a, StoredWeights& m) {
  const int64_t d = a.d_model, f = a.d_ff;
  auto n = [&](const std::string& s) { return std::vector<std::string>{"transformer." + s, s}; };
  m.embed = L.get(n("wte.weight"), {a.vocab_size, d});
  m.positions = L.get(n("wpe.weight"), {a.max_positions, d});
  for (int64_t i = 0; i < a.n_layers; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    StoredLayer& l = m.layers[i];
    auto norm = [&](const std::string& s) {
      return StoredNorm{L.get(n(p + s + ".weight"), {d}), L.get(n(p + s + ".bias"), {d})};
    };
    l.norm1 = norm("ln_1");
    l.norm2 = norm("ln_2");
    const TensorView qkv_w = L.get(n(p + "attn.c_attn.weight"), {d, 3 * d});
    const TensorView qkv_b = L.get(n(p + "attn.c_attn.bias"), {3 * d});
    l.q = conv1d_block(qkv_w, qkv_b, 0, d);
    l.k = conv1d_block(qkv_w, qkv_b, d, d);
    l.v = conv1d_block(qkv_w, qkv_b, 2 * d, d);
    l.o = conv1d_block(L.get(n(p + "attn.c_proj.weight"), {d, d}), L.get(n(p + "attn.c_proj.bias"), {d}), 0, d);
    l.up = conv1d_block(L.get(n(p + "mlp.c_fc.weight"), {d, f}), L.get(n(p + "mlp.c_fc.bias"), {f}), 0, f);
    l.down = conv1d_block(L.get(n(p + "mlp.c_proj.weight"), {f, d}), L.get(n(p + "mlp.c_proj.bias"), {d}), 0, d);
  }
  m.final_norm = StoredNorm{L.get(n("ln_f.weight"), {d}), L.get(n("ln_f.bias"), {d})};
  m.head = tied(m.embed);
}

void load_opt(const Loader& L, const ArchSpec& a, StoredWeights& m) {
  const int64_t d = a.d_model, f = a.d_ff, e = a.d_embed;
  const std::string P = L.has("model.decoder.embed_tokens.weight") ? "model.decoder." : "decoder.";
  m.embed = L.get(P + "embed_tokens.weight", {a.vocab_size, e});
  m.positions = L.get(P + "embed_positions.weight", {a.max_positions + a.position_offset, d});
  if (e != d) {
    m.project_in = L.linear(P + "project_in.weight", "", e, d);
    m.project_out = L.linear(P + "project_out.weight", "", d, e);
  }
  for (int64_t i = 0; i < a.n_layers; ++i) {
    const std::string p = P + "layers." + std::to_string(i) + ".";
    StoredLayer& l = m.layers[i];
    l.norm1 = L.norm(p + "self_attn_layer_norm", d);
    l.norm2 = L.norm(p + "final_layer_norm", d);
    l.q = L.linear(p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias", d, d);
    l.k = L.linear(p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias", d, d);
    l.v = L.linear(p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias", d, d);
    l.o = L.linear(p + "self_attn.out_proj.weight", p + "self_attn.out_proj.bias", d, d);
    l.up = L.linear(p + "fc1.weight", p + "fc1.bias", d, f);
    l.down = L.linear(p + "fc2.weight", p + "fc2.bias", f, d);
  }
  if (a.final_norm) m.final_norm = L.norm(P + "final_layer_norm", d);
  m.head = L.has("lm_head.weight") && !a.tied_head ? L.linear("lm_head.weight", "", e, a.vocab_size) : tied(m.embed);
}

void load_gptj(const Loader& L, const ArchSpec& a, StoredWeights& m) {
  const int64_t d = a.d_model, f = a.d_ff;
  m.embed = L.get("transformer.wte.weight", {a.vocab_size, d});
  for (int64_t i = 0; i < a.n_layers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    StoredLayer& l = m.layers[i];
    l.norm1 = L.norm(p + "ln_1", d);
    l.q = L.linear(p + "attn.q_proj.weight", "", d, d);
    l.k = L.linear(p + "attn.k_proj.weight", "", d, d);
    l.v = L.linear(p + "attn.v_proj.weight", "", d, d);
    l.o = L.linear(p + "attn.out_proj.weight", "", d, d);
    l.up = L.linear(p + "mlp.fc_in.weight", p + "mlp.fc_in.bias", d, f);
    l.down = L.linear(p + "mlp.fc_out.weight", p + "mlp.fc_out.bias", f, d);
  }
  m.final_norm = L.norm("transformer.ln_f", d);
  m.head = L.linear("lm_head.weight", "lm_head.bias", d, a.vocab_size);
}

void load_neox(const Loader& L, const ArchSpec& a, StoredWeights& m) {
  const int64_t d = a.d_model, f = a.d_ff, H = a.n_heads, hd = a.head_dim;
  m.embed = L.get("gpt_neox.embed_in.weight", {a.vocab_size, d});
  for (int64_t i = 0; i < a.n_layers; ++i) {
    const std::string p = "gpt_neox.layers." + std::to_string(i) + ".";
    StoredLayer& l = m.layers[i];
    l.norm1 = L.norm(p + "input_layernorm", d);
    l.norm2 = L.norm(p + "post_attention_layernorm", d);
    const TensorView w = L.get(p + "attention.query_key_value.weight", {3 * H * hd, d});
    const TensorView b = L.get(p + "attention.query_key_value.bias", {3 * H * hd});
    l.q = neox_part(w, b, 0, H, hd);
    l.k = neox_part(w, b, 1, H, hd);
    l.v = neox_part(w, b, 2, H, hd);
    l.o = L.linear(p + "attention.dense.weight", p + "attention.dense.bias", H * hd, d);
    l.up = L.linear(p + "mlp.dense_h_to_4h.weight", p + "mlp.dense_h_to_4h.bias", d, f);
    l.down = L.linear(p + "mlp.dense_4h_to_h.weight", p + "mlp.dense_4h_to_h.bias", f, d);
  }
  m.final_norm = L.norm("gpt_neox.final_layer_norm", d);
  m.head = a.tied_head ? tied(m.embed) : L.linear("embed_out.weight", "", d, a.vocab_size);
}

void load_llama(const Loader& L, const ArchSpec& a, StoredWeights& m) {
  const int64_t d = a.d_model, f = a.d_ff, hd = a.head_dim;
  m.embed = L.get("model.embed_tokens.weight", {a.vocab_size, d});
  for (int64_t i = 0; i < a.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    StoredLayer& l = m.layers[i];
    l.norm1 = L.norm(p + "input_layernorm", d);
    l.norm2 = L.norm(p + "post_attention_layernorm", d);
    l.q = L.linear(p + "self_attn.q_proj.weight", "", d, a.n_heads * hd);
    l.k = L.linear(p + "self_attn.k_proj.weight", "", d, a.n_kv_heads * hd);
    l.v = L.linear(p + "self_attn.v_proj.weight", "", d, a.n_kv_heads * hd);
    l.o = L.linear(p + "self_attn.o_proj.weight", "", a.n_heads * hd, d);
    l.gate = L.linear(p + "mlp.gate_proj.weight", "", d, f);
    l.up = L.linear(p + "mlp.up_proj.weight", "", d, f);
    l.down = L.linear(p + "mlp.down_proj.weight", "", f, d);
  }
  m.final_norm = L.norm("model.norm", d);
  m.head = a.tied_head ? tied(m.embed) : L.linear("lm_head.weight", "", d, a.vocab_size);
}

}  // namespace

StoredWeights load_weights(const ArchSpec& a, const WeightSource& src) {
  const Loader L(a, src);
  StoredWeights m;
  m.path = src.path();
  // Every layer has tensors of its own: a layer count beyond the file's tensors is a lying header,
  // refused before the per-layer table is allocated for it.
  const size_t tensors = src.list().size();
  if (uint64_t(a.n_layers) > tensors)
    fail(src.path(), ": ", a.n_layers, " layers, but the checkpoint holds only ", tensors, " tensors");
  m.layers.resize(size_t(a.n_layers));
  if (a.model_type == "gpt2") load_gpt2(L, a, m);
  else if (a.model_type == "opt") load_opt(L, a, m);
  else if (a.model_type == "gptj") load_gptj(L, a, m);
  else if (a.model_type == "gpt_neox") load_neox(L, a, m);
  else if (a.model_type == "llama") load_llama(L, a, m);
  else fail(src.path(), ": no weight map for model_type '", a.model_type, "'");
  m.head_tied = m.head.w.data == m.embed.data && !m.head.b.data;
  return m;
}

}  // namespace cascade
