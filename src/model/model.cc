// The generic decoder. Differences between families are the ArchSpec fields only: norm kind and
// position (pre/post), residual wiring (sequential, GPT-J's shared-norm parallel, NeoX's two-norm
// parallel), learned or rotary positions, activation, OPT's embedding projections.
#include "model/model.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "arch/load_weights.h"
#include "attention/exact_attention.h"
#include "core/error.h"
#include "model/memory_budget.h"
#include "model/residual_wiring.h"
#include "ops/activation.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/token_nll.h"

namespace cascade {

namespace {
using Clock = std::chrono::steady_clock;
}

const AdaLayerTrace* Sequence::trace(int l) const {
  if (device_) return device_->trace(l);
  return l >= 0 && l < int(layers_.size()) ? layers_[size_t(l)]->trace() : nullptr;
}

const LayerAttention* Sequence::cpu_layer(int l) const {
  return l >= 0 && l < int(layers_.size()) ? layers_[size_t(l)].get() : nullptr;
}

int64_t Sequence::cache_bytes() const {
  if (device_) return device_->cache_bytes();
  int64_t b = 0;
  for (const auto& l : layers_) b += l->cache_bytes();
  return b;
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path) {
  return std::make_unique<Model>(open_checkpoint(path), path.string());
}

Model::Model(Checkpoint ckpt, const std::string& source) : ckpt_(std::move(ckpt)), source_(source) {
  spec_ = arch_from_config(ckpt_.config, source);
  // Mapping the tensors allocates only what no view can express (dequantised GGUF types), which is
  // the host's whole need on the GPU; the CPU's widening is checked when it happens (weights()).
  check_memory_budget(*ckpt_.weights, source, Device::Cuda);
  stored_ = load_weights(spec_, *ckpt_.weights);
  rotary_ = spec_.rotary_embedding();
}

const ModelWeights& Model::weights() const {
  std::call_once(widened_, [&] {
    check_memory_budget(*ckpt_.weights, source_, Device::Cpu);
    // The one write to w_: not `mutable`, so that every other const use reads the views read-only.
    const_cast<ModelWeights&>(w_) = widen_weights(stored_);
  });
  return w_;
}

void Model::to_device(Device d, DType dtype, bool cuda_graphs, ops::AttentionKernel attention_kernel) {
  if (d == Device::Cpu) {
    if (dtype != DType::F32) fail("--dtype ", dtype_name(dtype), ": the CPU engine computes in f32 only");
    (void)weights();
    gpu_.reset();
    device_ = Device::Cpu;
    return;
  }
  gpu_ = make_cuda_decoder(spec_, stored_, rotary_, dtype, cuda_graphs, attention_kernel);
  device_ = Device::Cuda;
}

Sequence Model::new_sequence(const AttentionFactory* attention) const {
  Sequence s;
  const ExactAttentionFactory exact;
  const AttentionFactory& method = attention ? *attention : exact;
  if (gpu_) {
    s.device_ = gpu_->new_sequence(method, s.times_.get());
    return s;
  }
  const ModelWeights& w = weights();
  std::vector<AttentionContext> ctx(size_t(spec_.n_layers));
  for (int i = 0; i < int(spec_.n_layers); ++i)
    ctx[size_t(i)] = AttentionContext{&spec_, &w.layers[size_t(i)], &rotary_, i, s.times_.get()};
  s.layers_ = method.make(ctx);
  return s;
}

void Model::mlp(const LayerWeights& l, const float* x, int64_t n, float* out) const {
  const int64_t d = spec_.d_model, f = spec_.d_ff;
  std::vector<float> hbuf(static_cast<size_t>(n * f));
  ops::linear(l.up, x, n, d, hbuf.data(), f);
  if (ops::is_glu(spec_.act)) {
    std::vector<float> g(static_cast<size_t>(n * f));
    ops::linear(l.gate, x, n, d, g.data(), f);
    ops::activation(spec_.act, g.data(), hbuf.data(), n * f);
    hbuf.swap(g);
  } else {
    ops::activation(spec_.act, hbuf.data(), nullptr, n * f);
  }
  ops::linear(l.down, hbuf.data(), n, f, out, d);
}

void Model::check_append(const Sequence& seq, std::span<const int32_t> tokens) const {
  const int64_t n = int64_t(tokens.size());
  if (seq.length_ + n > spec_.max_positions)
    fail("sequence of ", seq.length_ + n, " tokens is longer than the model's context of ", spec_.max_positions, " tokens");
  for (int64_t i = 0; i < n; ++i)
    if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= spec_.vocab_size)
      fail("token id ", tokens[size_t(i)], " at position ", i, " is outside the vocabulary [0, ", spec_.vocab_size, ")");
  if (bool(gpu_) != bool(seq.device_)) fail("this sequence was made before the model moved to another device");
}

void Model::note_device_forward(Sequence& seq, int64_t n, Clock::time_point t_start) const {
  seq.length_ += n;
  seq.times_->total += std::chrono::duration<double>(Clock::now() - t_start).count();
}

std::vector<double> Model::next_token_nll(Sequence& seq, std::span<const int32_t> tokens, int64_t first_row) const {
  const int64_t n = int64_t(tokens.size());
  if (first_row < 0 || (n > 0 && first_row > n - 1))
    fail("next_token_nll: first row ", first_row, " outside [0, ", std::max<int64_t>(0, n - 1), "]");
  if (n == 0) return {};
  if (gpu_) {
    const auto t_start = Clock::now();
    check_append(seq, tokens);
    std::vector<double> nll = gpu_->forward_nll(*seq.device_, tokens, seq.length_, first_row);
    note_device_forward(seq, n, t_start);
    return nll;
  }
  const Tensor logits = forward(seq, tokens);
  // A log-softmax over the vocabulary per row (2048 x 49152 exps for SmolLM2) costs more than the
  // forward pass: rows in parallel, each result in its own slot.
  std::vector<double> nll(static_cast<size_t>(n - 1 - first_row));
#pragma omp parallel for schedule(static)
  for (int64_t r = first_row; r < n - 1; ++r)
    nll[size_t(r - first_row)] = ops::token_nll(logits.row(r), logits.dim(1), tokens[size_t(r + 1)]);
  return nll;
}

DeviceLogits Model::forward_on_device(Sequence& seq, std::span<const int32_t> tokens, bool last_only) const {
  if (!gpu_) fail("logits on the device need a model on the GPU (--device cuda); this one runs on the CPU");
  CASCADE_CHECK(!tokens.empty(), "forward_on_device: no tokens");
  const auto t_start = Clock::now();
  check_append(seq, tokens);
  DeviceLogits logits = gpu_->forward_on_device(*seq.device_, tokens, seq.length_, last_only);
  note_device_forward(seq, int64_t(tokens.size()), t_start);
  return logits;
}

Tensor Model::forward(Sequence& seq, std::span<const int32_t> tokens, bool last_only) const {
  const auto t_start = Clock::now();
  const ArchSpec& a = spec_;
  const int64_t n = int64_t(tokens.size()), d = a.d_model, e = a.d_embed;
  if (n == 0) return Tensor::zeros({0, a.vocab_size});
  check_append(seq, tokens);
  if (gpu_) {
    Tensor logits = gpu_->forward(*seq.device_, tokens, seq.length_, last_only);
    note_device_forward(seq, n, t_start);
    return logits;
  }
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = seq.length_ + i;

  // Embeddings (OPT: project_in to the model width), then learned positions.
  const size_t nd = static_cast<size_t>(n * d);
  std::vector<float> h(nd), x(nd), att(nd), ff(nd);
  {
    std::vector<float> emb(static_cast<size_t>(n * e));
    for (int64_t i = 0; i < n; ++i) std::memcpy(&emb[size_t(i * e)], w_.embed.row(tokens[size_t(i)]), size_t(e) * 4);
    if (w_.project_in.present()) ops::linear(w_.project_in, emb.data(), n, e, h.data(), d);
    else h.swap(emb);
    if (a.learned_positions)
      for (int64_t i = 0; i < n; ++i) ops::add_inplace(&h[size_t(i * d)], w_.positions.row(pos[size_t(i)] + a.position_offset), d);
  }

  // The layers: the wiring shared with the GPU decoder (model/residual_wiring.h) on host buffers.
  struct CpuLayers {
    using Ptr = float*;
    const Model& m;
    Sequence& seq;
    const int64_t* pos;
    int64_t n, d;
    const Norm& nw(int64_t l, int which) const {
      return which == 1 ? m.w_.layers[size_t(l)].norm1 : m.w_.layers[size_t(l)].norm2;
    }
    void norm(int64_t l, int which, float* src, float* dst) {
      ops::norm(m.spec_.norm, nw(l, which).gamma(), nw(l, which).beta(), m.spec_.norm_eps, src, n, d, dst);
    }
    void add_norm(int64_t l, int which, float* h, float* add, float* dst) {
      ops::add_inplace(h, add, n * d);
      norm(l, which, h, dst);
    }
    void attention(int64_t l, float* x, float* out) { seq.layers_[size_t(l)]->forward(x, n, pos, out); }
    void mlp(int64_t l, float* x, float* out) { m.mlp(m.w_.layers[size_t(l)], x, n, out); }
    void add(float* h, float* x) { ops::add_inplace(h, x, n * d); }
    void add2(float* h, float* x, float* x2) {
      ops::add_inplace(x, x2, n * d);
      ops::add_inplace(h, x, n * d);
    }
  };
  CpuLayers backend{*this, seq, pos.data(), n, d};
  for (int64_t l = 0; l < a.n_layers; ++l) residual_layer(a, backend, l, h.data(), x.data(), att.data(), ff.data());
  seq.length_ += n;

  // Final norm, OPT's project_out, head: only on the rows asked for.
  const int64_t first = last_only ? n - 1 : 0, rows = n - first;
  float* hr = h.data() + first * d;
  if (a.final_norm) ops::norm(a.norm, w_.final_norm.gamma(), w_.final_norm.beta(), a.norm_eps, hr, rows, d, hr);
  std::vector<float> proj;
  const float* head_in = hr;
  if (w_.project_out.present()) {
    proj.resize(size_t(rows * e));
    ops::linear(w_.project_out, hr, rows, d, proj.data(), e);
    head_in = proj.data();
  }
  Tensor logits = Tensor::zeros({rows, a.vocab_size});
  ops::linear(w_.head, head_in, rows, e, logits.data(), a.vocab_size);
  seq.times_->total += std::chrono::duration<double>(Clock::now() - t_start).count();
  return logits;
}

}  // namespace cascade
