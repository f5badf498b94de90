// The generic decoder. Differences between families are the ArchSpec fields only: norm kind and
// position (pre/post), residual wiring (sequential, GPT-J's shared-norm parallel, NeoX's two-norm
// parallel), learned or rotary positions, activation, OPT's embedding projections.
#include "model/model.h"

#include <chrono>
#include <cstring>

#include "arch/load_weights.h"
#include "attention/exact_attention.h"
#include "core/error.h"
#include "model/memory_budget.h"
#include "ops/activation.h"
#include "ops/linear.h"
#include "ops/norm.h"

namespace cascade {

namespace {
using Clock = std::chrono::steady_clock;
}

int64_t Sequence::cache_bytes() const {
  int64_t b = 0;
  for (const auto& l : layers_) b += l->cache_bytes();
  return b;
}

std::unique_ptr<Model> Model::load(const std::filesystem::path& path) {
  return std::make_unique<Model>(open_checkpoint(path), path.string());
}

Model::Model(Checkpoint ckpt, const std::string& source) : ckpt_(std::move(ckpt)) {
  spec_ = arch_from_config(ckpt_.config, source);
  check_memory_budget(*ckpt_.weights, source);  // before load_weights allocates anything
  w_ = load_weights(spec_, *ckpt_.weights);
  rotary_ = ops::Rotary(spec_);
}

Sequence Model::new_sequence(const AttentionFactory* attention) const {
  Sequence s;
  std::vector<AttentionContext> ctx(size_t(spec_.n_layers));
  for (int i = 0; i < int(spec_.n_layers); ++i)
    ctx[size_t(i)] = AttentionContext{&spec_, &w_.layers[size_t(i)], &rotary_, i, s.times_.get()};
  const ExactAttentionFactory exact;
  s.layers_ = (attention ? attention : &exact)->make(ctx);
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

Tensor Model::forward(Sequence& seq, std::span<const int32_t> tokens, bool last_only) const {
  const auto t_start = Clock::now();
  const ArchSpec& a = spec_;
  const int64_t n = int64_t(tokens.size()), d = a.d_model, e = a.d_embed;
  if (n == 0) return Tensor::zeros({0, a.vocab_size});
  if (seq.length_ + n > a.max_positions)
    fail("sequence of ", seq.length_ + n, " tokens is longer than the model's context of ", a.max_positions, " tokens");
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    pos[size_t(i)] = seq.length_ + i;
    if (tokens[size_t(i)] < 0 || tokens[size_t(i)] >= a.vocab_size)
      fail("token id ", tokens[size_t(i)], " at position ", i, " is outside the vocabulary [0, ", a.vocab_size, ")");
  }

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

  for (int64_t l = 0; l < a.n_layers; ++l) {
    const LayerWeights& lw = w_.layers[size_t(l)];
    // X_l: the attention input (post-norm models attend on H_l itself).
    if (a.pre_norm) ops::norm(a.norm, lw.norm1, a.norm_eps, h.data(), n, d, x.data());
    else x = h;
    seq.layers_[size_t(l)]->forward(x.data(), n, pos.data(), att.data());
    switch (a.residual) {
      case Residual::Sequential:
        if (a.pre_norm) {
          ops::add_inplace(h.data(), att.data(), n * d);
          ops::norm(a.norm, lw.norm2, a.norm_eps, h.data(), n, d, x.data());
          mlp(lw, x.data(), n, ff.data());
          ops::add_inplace(h.data(), ff.data(), n * d);
        } else {
          ops::add_inplace(h.data(), att.data(), n * d);
          ops::norm(a.norm, lw.norm1, a.norm_eps, h.data(), n, d, h.data());
          mlp(lw, h.data(), n, ff.data());
          ops::add_inplace(h.data(), ff.data(), n * d);
          ops::norm(a.norm, lw.norm2, a.norm_eps, h.data(), n, d, h.data());
        }
        break;
      case Residual::ParallelShared:
        mlp(lw, x.data(), n, ff.data());
        ops::add_inplace(att.data(), ff.data(), n * d);
        ops::add_inplace(h.data(), att.data(), n * d);
        break;
      case Residual::ParallelTwoNorms:
        ops::norm(a.norm, lw.norm2, a.norm_eps, h.data(), n, d, x.data());
        mlp(lw, x.data(), n, ff.data());
        ops::add_inplace(att.data(), ff.data(), n * d);
        ops::add_inplace(h.data(), att.data(), n * d);
        break;
    }
  }
  seq.length_ += n;

  // Final norm, OPT's project_out, head: only on the rows asked for.
  const int64_t first = last_only ? n - 1 : 0, rows = n - first;
  float* hr = h.data() + first * d;
  if (a.final_norm) ops::norm(a.norm, w_.final_norm, a.norm_eps, hr, rows, d, hr);
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
