// llama2.c layout: after the header come, each as one contiguous block (per-layer arrays stacked
// over layers): token embedding [V, dim], attention norms [L, dim], wq [L, dim, dim],
// wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], ffn norms [L, dim],
// w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], final norm [dim],
// freq_cis_real and freq_cis_imag [seq_len, head_size / 2] (unused: the decoder computes rotary
// itself), and the classifier [V, dim] when unshared. The size arithmetic is checked because the
// header is untrusted: products of int32 fields can pass 2^64.
#include "io/llama2c.h"

#include <cstring>
#include <map>

#include "core/error.h"
#include "io/mmap_file.h"
#include "io/rotary_layout.h"

namespace cascade {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);

[[noreturn]] void too_large(const std::string& file) { fail(file, ": llama2.c header implies an impossibly large file"); }

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;  // as stored
  int32_t vocab() const { return vocab_size < 0 ? -vocab_size : vocab_size; }
  // A negative stored vocab_size means the file carries its own classifier after the weights.
  bool shared_classifier() const { return vocab_size > 0; }
};

class Llama2cWeights : public WeightSource {
 public:
  Llama2cWeights(std::shared_ptr<const MappedFile> file, const Llama2cHeader& h) : file_(std::move(file)) {
    const std::string name = file_->path().string();
    const int64_t dim = h.dim, hidden = h.hidden_dim, L = h.n_layers, V = h.vocab();
    const int64_t head = dim / h.n_heads, kv_dim = head * h.n_kv_heads;

    // The layout, one block per array (a per-layer array is one block of L stacked tensors); the
    // blocks are expanded into per-tensor slots only after the file size has been checked, so an
    // absurd n_layers cannot make us build billions of entries.
    struct Block {
      std::string name;  // empty: skipped (freq_cis)
      std::vector<int64_t> shape;
      bool per_layer;
      int rotary_heads;
      uint64_t start = 0;
    };
    std::vector<Block> blocks = {
        {"model.embed_tokens.weight", {V, dim}, false, 0},
        {"input_layernorm.weight", {dim}, true, 0},
        {"self_attn.q_proj.weight", {dim, dim}, true, h.n_heads},
        {"self_attn.k_proj.weight", {kv_dim, dim}, true, h.n_kv_heads},
        {"self_attn.v_proj.weight", {kv_dim, dim}, true, 0},
        {"self_attn.o_proj.weight", {dim, dim}, true, 0},
        {"post_attention_layernorm.weight", {dim}, true, 0},
        {"mlp.gate_proj.weight", {hidden, dim}, true, 0},
        {"mlp.down_proj.weight", {dim, hidden}, true, 0},
        {"mlp.up_proj.weight", {hidden, dim}, true, 0},
        {"model.norm.weight", {dim}, false, 0},
        {"", {2, h.seq_len, head / 2}, false, 0},  // freq_cis_real, freq_cis_imag
    };
    if (!h.shared_classifier()) blocks.push_back({"lm_head.weight", {V, dim}, false, 0});
    uint64_t floats = 0;
    for (Block& b : blocks) {
      uint64_t n = b.per_layer ? uint64_t(L) : 1;
      for (int64_t s : b.shape)
        if (__builtin_mul_overflow(n, uint64_t(s), &n)) too_large(name);
      b.start = floats;
      if (__builtin_add_overflow(floats, n, &floats)) too_large(name);
    }
    uint64_t expected;
    if (__builtin_mul_overflow(floats, sizeof(float), &expected) || __builtin_add_overflow(expected, kHeaderBytes, &expected)) too_large(name);
    if (expected != file_->size())
      fail(name, ": llama2.c header (dim ", h.dim, ", hidden_dim ", h.hidden_dim, ", n_layers ", h.n_layers, ", n_heads ", h.n_heads,
           ", n_kv_heads ", h.n_kv_heads, ", vocab_size ", h.vocab_size, ", seq_len ", h.seq_len, ") implies ", expected,
           " bytes, but the file has ", file_->size(), "; truncated, or not a legacy llama2.c checkpoint");

    for (const Block& b : blocks) {
      if (b.name.empty()) continue;
      if (!b.per_layer) {
        slots_[b.name] = {b.start, b.shape, b.rotary_heads};
        continue;
      }
      uint64_t per = 1;
      for (int64_t s : b.shape) per *= uint64_t(s);
      for (int64_t l = 0; l < L; ++l)
        slots_["model.layers." + std::to_string(l) + "." + b.name] = {b.start + uint64_t(l) * per, b.shape, b.rotary_heads};
    }
    if (h.shared_classifier()) slots_["lm_head.weight"] = slots_.at("model.embed_tokens.weight");
  }

  std::string path() const override { return file_->path().string(); }

  std::vector<TensorMeta> list() const override {
    std::vector<TensorMeta> out;
    for (const auto& [name, s] : slots_) {
      uint64_t n = 1;
      for (int64_t d : s.shape) n *= uint64_t(d);
      out.push_back({name, "F32", s.shape, n * sizeof(float)});
    }
    return out;
  }

  bool has(const std::string& name) const override { return slots_.count(name) != 0; }

  TensorView load(const std::string& name) const override {
    const auto it = slots_.find(name);
    if (it == slots_.end()) fail(path(), ": llama2.c checkpoint has no tensor named '", name, "'");
    const Slot& s = it->second;
    // The header is 28 bytes and the map page-aligned, so every float is 4-byte aligned.
    const auto* data = reinterpret_cast<const float*>(file_->data() + kHeaderBytes) + s.offset;
    if (s.rotary_heads) return owned_view(meta_to_hf_rotary_rows(Tensor::view(data, s.shape, file_), s.rotary_heads));
    return TensorView{DType::F32, data, s.shape, file_, true};
  }

 private:
  struct Slot {
    uint64_t offset;  // in floats after the header
    std::vector<int64_t> shape;
    int rotary_heads;  // > 0: rows reordered from Meta's to Hugging Face's rotary layout
  };
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, Slot> slots_;
};

Llama2cHeader read_header(const MappedFile& f) {
  const std::string name = f.path().string();
  if (f.size() >= 4 && std::memcmp(f.data(), "PK\x03\x04", 4) == 0)
    fail(name, ": a PyTorch (zip) checkpoint, not llama2.c; convert it to a safetensors directory");
  // llama2.c's newer export.py versions start with the magic "ak42" (0x616b3432 little-endian).
  if (f.size() >= 4 && std::memcmp(f.data(), "24ka", 4) == 0)
    fail(name, ": a llama2.c export of version >= 1 (magic \"ak42\"); only the legacy format (export.py --version 0) is supported");
  if (f.size() < kHeaderBytes) fail(name, ": too short for a llama2.c header (", f.size(), " bytes, need ", kHeaderBytes, ")");
  int32_t v[7];
  std::memcpy(v, f.data(), sizeof v);
  const Llama2cHeader h{v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  auto bad = [&](const auto&... parts) {
    fail(name, ": invalid llama2.c header (dim ", h.dim, ", hidden_dim ", h.hidden_dim, ", n_layers ", h.n_layers, ", n_heads ",
         h.n_heads, ", n_kv_heads ", h.n_kv_heads, ", vocab_size ", h.vocab_size, ", seq_len ", h.seq_len, "): ", parts...);
  };
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 || h.seq_len <= 0 ||
      h.vocab_size == 0 || h.vocab_size == INT32_MIN)
    bad("sizes must be positive (vocab_size non-zero)");
  if (h.dim % h.n_heads != 0 || (h.dim / h.n_heads) % 2 != 0) bad("dim must be n_heads times an even head size");
  if (h.n_heads % h.n_kv_heads != 0) bad("n_heads must be a multiple of n_kv_heads");
  return h;
}

}  // namespace

Checkpoint open_llama2c(const fs::path& path) {
  auto file = MappedFile::open(path);
  const Llama2cHeader h = read_header(*file);
  Checkpoint ck;
  ck.weights = std::make_unique<Llama2cWeights>(std::move(file), h);
  ck.config = {{"model_type", "llama"},
               {"hidden_size", h.dim},
               {"intermediate_size", h.hidden_dim},
               {"num_hidden_layers", h.n_layers},
               {"num_attention_heads", h.n_heads},
               {"num_key_value_heads", h.n_kv_heads},
               {"vocab_size", h.vocab()},
               {"max_position_embeddings", h.seq_len},
               {"rms_norm_eps", 1e-5},
               {"rope_theta", 10000.0},
               {"tie_word_embeddings", h.shared_classifier()},
               {"hidden_act", "silu"},
               {"bos_token_id", 1},
               {"eos_token_id", 2}};
  ck.tokenizer_dir = path.parent_path();
  ck.format = "llama2c";
  ck.format_metadata = {{"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
                        {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"vocab_size", h.vocab_size},
                        {"seq_len", h.seq_len}, {"shared_classifier", h.shared_classifier()}};
  return ck;
}

}  // namespace cascade
