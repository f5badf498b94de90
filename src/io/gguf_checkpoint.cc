// A llama-architecture GGUF file as a Checkpoint. llama.cpp's converter renames the Hugging Face
// tensors (model.layers.N.self_attn.q_proj -> blk.N.attn_q), lists dimensions fastest-first, and
// permutes the rows of Q and K into Meta's interleaved rotary layout; all three are undone here so
// that the decoder sees exactly what it would see from the original safetensors. The config is
// rebuilt from the metadata keys that llama.cpp itself reads for "llama"; the tokenizer keys come
// back as data (EmbeddedVocab) for src/tokenizer to build the tokenizer from.
#include <map>
#include <optional>

#include "core/error.h"
#include "io/gguf.h"
#include "io/rotary_layout.h"

namespace cascade {

namespace {

// blk.N.<gguf> -> model.layers.N.<hf>
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> m = {
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},           {"ffn_down", "mlp.down_proj"}};
  return m;
}

// The Hugging Face name of a GGUF tensor, or "" when Llama has no such tensor.
std::string hf_name(const std::string& gguf) {
  const auto dot = gguf.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string base = gguf.substr(0, dot), suffix = gguf.substr(dot);
  if (suffix != ".weight" && suffix != ".bias") return "";
  if (base == "token_embd") return "model.embed_tokens" + suffix;
  if (base == "output_norm") return "model.norm" + suffix;
  if (base == "output") return "lm_head" + suffix;
  if (base.rfind("blk.", 0) != 0) return "";
  const auto dot2 = base.find('.', 4);
  if (dot2 == std::string::npos) return "";
  const std::string layer = base.substr(4, dot2 - 4);
  if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return "";
  const auto it = layer_names().find(base.substr(dot2 + 1));
  if (it == layer_names().end()) return "";
  return "model.layers." + layer + "." + it->second + suffix;
}

class GgufWeights : public WeightSource {
 public:
  GgufWeights(std::shared_ptr<const GgufFile> file, int n_heads, int n_kv_heads) : file_(std::move(file)) {
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (t.name == "rope_freqs.weight")
        fail(path(), ": rope_freqs.weight (Llama 3.1-style rope frequency scaling) is not supported");
      const std::string hf = hf_name(t.name);
      if (hf.empty()) fail(path(), ": tensor '", t.name, "' has no Hugging Face Llama equivalent");
      int rotary = 0;
      if (hf.ends_with("q_proj.weight") || hf.ends_with("q_proj.bias")) rotary = n_heads;
      if (hf.ends_with("k_proj.weight") || hf.ends_with("k_proj.bias")) rotary = n_kv_heads;
      slots_[hf] = {&t, rotary};
    }
  }

  std::string path() const override { return file_->path(); }

  std::vector<TensorMeta> list() const override {
    std::vector<TensorMeta> out;
    for (const auto& [name, s] : slots_)
      out.push_back({name, ggml_type_name(uint32_t(s.info->type)), shape(*s.info), s.info->nbytes});
    return out;
  }

  bool has(const std::string& name) const override { return slots_.count(name) != 0; }

  TensorView load(const std::string& name) const override {
    const auto it = slots_.find(name);
    if (it == slots_.end()) fail(path(), ": GGUF checkpoint has no tensor that maps to '", name, "'");
    const GgufTensorInfo& t = *it->second.info;
    const uint8_t* src = file_->tensor_data(t);
    const int rotary = it->second.rotary_heads;
    // The float types are views of the map (q/k rows in Meta's rotary order excepted); every other
    // type is dequantised.
    const std::optional<DType> stored = t.type == GgmlType::F32    ? std::optional(DType::F32)
                                        : t.type == GgmlType::F16  ? std::optional(DType::F16)
                                        : t.type == GgmlType::BF16 ? std::optional(DType::BF16)
                                                                   : std::nullopt;
    if (stored && !rotary) return TensorView{*stored, src, shape(t), file_->owner(), true};
    Tensor w;
    if (t.type == GgmlType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      w = Tensor::view(reinterpret_cast<const float*>(src), shape(t), file_->owner());
    } else {
      w = Tensor::zeros(shape(t));
      dequantize(t.type, src, w.data(), t.numel());
    }
    return owned_view(rotary ? meta_to_hf_rotary_rows(w, rotary) : w);
  }

 private:
  // ggml lists dimensions fastest-first; a row-major shape lists them slowest-first.
  static std::vector<int64_t> shape(const GgufTensorInfo& t) { return {t.ne.rbegin(), t.ne.rend()}; }

  struct Slot {
    const GgufTensorInfo* info;  // owned by file_
    int rotary_heads;            // > 0: rows reordered from Meta's to Hugging Face's rotary layout
  };
  std::shared_ptr<const GgufFile> file_;
  std::map<std::string, Slot> slots_;
};

// A token id from the metadata, checked against the vocabulary.
std::optional<int32_t> token_id(const GgufFile& f, const std::string& key, size_t vocab) {
  const auto id = f.get_uint(key);
  if (!id) return std::nullopt;
  if (*id >= vocab)
    fail(f.path(), ": GGUF metadata ", key, " = ", *id, " is outside the vocabulary of ", vocab, " tokens");
  return int32_t(*id);
}

// The tokenizer.ggml.* keys as they are; nullopt when the file carries no tokenizer. Only what
// the config also reads is checked here (sizes of per-token arrays, special ids in range).
std::optional<EmbeddedVocab> gguf_vocab(const GgufFile& f) {
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return std::nullopt;
  EmbeddedVocab v;
  v.source = f.path();
  v.model = *model;
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("");
  v.tokens = f.require(f.get_string_array("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens");
  const size_t n = v.tokens.size();
  v.types = f.get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>{});
  if (!v.types.empty() && v.types.size() != n)
    fail(f.path(), ": tokenizer.ggml.token_type has ", v.types.size(), " entries for ", n, " tokens");
  v.scores = f.get_float_array("tokenizer.ggml.scores");
  if (v.scores && v.scores->size() != n)
    fail(f.path(), ": tokenizer.ggml.scores has ", v.scores->size(), " entries for ", n, " tokens");
  v.merges = f.get_string_array("tokenizer.ggml.merges");
  v.bos = token_id(f, "tokenizer.ggml.bos_token_id", n);
  v.eos = token_id(f, "tokenizer.ggml.eos_token_id", n);
  v.unk = token_id(f, "tokenizer.ggml.unknown_token_id", n);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  return v;
}

// A positive integer that fits an int, for sizes in the config.
int64_t size_key(const GgufFile& f, const std::string& key, std::optional<uint64_t> fallback = std::nullopt) {
  const auto v = f.get_uint(key);
  const uint64_t x = v ? *v : f.require(fallback, key);
  if (x == 0 || x > (uint64_t(1) << 31)) fail(f.path(), ": GGUF metadata ", key, " = ", x, " is not a plausible size");
  return int64_t(x);
}

nlohmann::json llama_config(const GgufFile& f, const EmbeddedVocab* vocab_data) {
  const std::string a = "llama.";
  const int64_t n_embd = size_key(f, a + "embedding_length");
  const int64_t n_head = size_key(f, a + "attention.head_count");
  const int64_t n_head_kv = size_key(f, a + "attention.head_count_kv", uint64_t(n_head));
  const int64_t head_dim = size_key(f, a + "attention.key_length", uint64_t(n_embd / n_head));
  if (n_head % n_head_kv != 0)
    fail(f.path(), ": ", n_head, " attention heads is not a multiple of ", n_head_kv, " KV heads");
  if (size_key(f, a + "attention.value_length", uint64_t(head_dim)) != head_dim)
    fail(f.path(), ": GGUF key and value head sizes differ, which Llama does not allow");
  if (size_key(f, a + "rope.dimension_count", uint64_t(head_dim)) != head_dim)
    fail(f.path(), ": partial rotary embeddings (", a, "rope.dimension_count != head size ", head_dim,
         ") are not supported for llama");
  const std::string scaling = f.get_string(a + "rope.scaling.type").value_or("none");
  if (scaling != "none") fail(f.path(), ": rope scaling '", scaling, "' is not supported");

  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd || embd->ne.size() != 2) fail(f.path(), ": token_embd.weight is missing or not a matrix");
  const int64_t vocab = vocab_data ? int64_t(vocab_data->tokens.size()) : size_key(f, a + "vocab_size", uint64_t(embd->ne[1]));
  if (vocab != embd->ne[1])
    fail(f.path(), ": the vocabulary has ", vocab, " tokens but token_embd.weight has ", embd->ne[1], " rows");

  nlohmann::json c = {{"model_type", "llama"},
                      {"architectures", {"LlamaForCausalLM"}},
                      {"hidden_size", n_embd},
                      {"intermediate_size", size_key(f, a + "feed_forward_length")},
                      {"num_hidden_layers", size_key(f, a + "block_count")},
                      {"num_attention_heads", n_head},
                      {"num_key_value_heads", n_head_kv},
                      {"head_dim", head_dim},
                      {"vocab_size", vocab},
                      {"max_position_embeddings", size_key(f, a + "context_length")},
                      {"rms_norm_eps", f.require(f.get_float(a + "attention.layer_norm_rms_epsilon"),
                                                 a + "attention.layer_norm_rms_epsilon")},
                      {"rope_theta", f.get_float(a + "rope.freq_base").value_or(10000.0)},
                      {"tie_word_embeddings", f.find_tensor("output.weight") == nullptr},
                      {"attention_bias", f.find_tensor("blk.0.attn_q.bias") != nullptr},
                      {"mlp_bias", f.find_tensor("blk.0.ffn_up.bias") != nullptr},
                      {"hidden_act", "silu"}};
  if (vocab_data && vocab_data->bos) c["bos_token_id"] = *vocab_data->bos;
  if (vocab_data && vocab_data->eos) c["eos_token_id"] = *vocab_data->eos;
  return c;
}

}  // namespace

Checkpoint open_gguf_checkpoint(const std::filesystem::path& path) {
  const auto file = GgufFile::open(path);
  const std::string arch = file->require(file->get_string("general.architecture"), "general.architecture");
  if (arch != "llama") fail(file->path(), ": unsupported GGUF architecture '", arch, "' (Cascade reads 'llama')");
  Checkpoint ck;
  ck.embedded_vocab = gguf_vocab(*file);
  ck.config = llama_config(*file, ck.embedded_vocab ? &*ck.embedded_vocab : nullptr);
  ck.tokenizer_dir = path.parent_path();
  ck.weights =
      std::make_unique<GgufWeights>(file, int(ck.config["num_attention_heads"]), int(ck.config["num_key_value_heads"]));
  ck.format = "gguf";
  std::map<std::string, int> types;
  for (const GgufTensorInfo& t : file->tensors()) ++types[ggml_type_name(uint32_t(t.type))];
  // Vocabulary-sized arrays are summarised by their length; short ones (languages) are kept.
  ck.format_metadata = {{"version", file->version()},
                        {"alignment", file->alignment()},
                        {"tensor_count", file->tensors().size()},
                        {"tensor_types", types},
                        {"metadata", file->metadata_json(32)}};
  return ck;
}

}  // namespace cascade
