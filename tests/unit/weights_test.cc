// The decoder's weights from the conformance fixtures: the stored views keep the file's dtype (GPT-2
// F16, GPT-J BF16, NeoX and Llama F32), the CPU's float32 weights are the views widened (every
// element of every linear equals load_f32 of its tensor at the place the family's layout puts it,
// bit for bit), and the GPU's memory need follows the compute dtype.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>

#include "core/error.h"
#include "model/memory_budget.h"
#include "model/model.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

using test::data_dir;

// Element (j, i) of a linear: output j, input i.
float at(const Linear& l, int64_t j, int64_t i) { return l.in_major ? l.w[i * l.ld + j] : l.w[j * l.ld + i]; }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Every element of l equals stored[row(j), i] ([rows, in] tensors) or stored[i, row(j)] (in_major).
void expect_linear_is(const Linear& l, const Tensor& stored, bool in_major,
                      const std::function<int64_t(int64_t)>& row, const std::string& what) {
  ASSERT_EQ(l.in_major, in_major) << what;
  int64_t bad = 0;
  for (int64_t j = 0; j < l.out; ++j)
    for (int64_t i = 0; i < l.in; ++i) {
      const float want = in_major ? stored.data()[i * stored.dim(1) + row(j)] : stored.data()[row(j) * stored.dim(1) + i];
      bad += !same_bits(at(l, j, i), want);
    }
  EXPECT_EQ(bad, 0) << what;
}

TEST(Weights, StoredViewsKeepTheFileDtype) {
  const std::pair<const char*, DType> cases[] = {
      {"gpt2", DType::F16}, {"gptj", DType::BF16}, {"neox", DType::F32}, {"llama", DType::F32}};
  for (const auto& [name, dtype] : cases) {
    auto m = Model::load(data_dir() / "models" / name);
    const StoredWeights& w = m->stored_weights();
    EXPECT_EQ(w.embed.dtype, dtype) << name;
    EXPECT_TRUE(w.embed.mapped) << name;
    EXPECT_EQ(w.layers.at(0).q.w.dtype, dtype) << name;
    EXPECT_EQ(w.layers.at(0).norm1.weight.dtype, dtype) << name;
  }
}

TEST(Weights, Gpt2Conv1dBlocksWidenToTheStoredColumns) {
  auto m = Model::load(data_dir() / "models/gpt2");
  const int64_t d = m->spec().d_model;
  const Tensor qkv = m->checkpoint().weights->load_f32("transformer.h.0.attn.c_attn.weight");
  const LayerWeights& l = m->weights().layers.at(0);
  expect_linear_is(l.q, qkv, true, [](int64_t j) { return j; }, "gpt2 q");
  expect_linear_is(l.k, qkv, true, [d](int64_t j) { return d + j; }, "gpt2 k");
  expect_linear_is(l.v, qkv, true, [d](int64_t j) { return 2 * d + j; }, "gpt2 v");
  EXPECT_EQ(m->weights().head.w, m->weights().embed.data());  // tied: the embedding's one copy
  EXPECT_TRUE(m->stored_weights().head_tied);
}

TEST(Weights, NeoxPerHeadBlocksWidenToTheStoredRows) {
  auto m = Model::load(data_dir() / "models/neox");
  const int64_t hd = m->spec().head_dim;
  const Tensor qkv = m->checkpoint().weights->load_f32("gpt_neox.layers.1.attention.query_key_value.weight");
  const LayerWeights& l = m->weights().layers.at(1);
  const Linear* parts[] = {&l.q, &l.k, &l.v};
  for (int64_t part = 0; part < 3; ++part)
    expect_linear_is(*parts[part], qkv, false, [=](int64_t j) { return (j / hd) * 3 * hd + part * hd + j % hd; },
                     "neox part " + std::to_string(part));
}

TEST(Weights, GptjBf16WidensToLoadF32) {
  auto m = Model::load(data_dir() / "models/gptj");
  const Tensor q = m->checkpoint().weights->load_f32("transformer.h.0.attn.q_proj.weight");
  expect_linear_is(m->weights().layers.at(0).q, q, false, [](int64_t j) { return j; }, "gptj q");
  const Tensor ln = m->checkpoint().weights->load_f32("transformer.h.0.ln_1.weight");
  EXPECT_EQ(std::memcmp(m->weights().layers.at(0).norm1.weight.data(), ln.data(), size_t(ln.numel()) * 4), 0);
}

// The device's need: every uploaded matrix in the compute dtype, norm weights (and the untied
// head's bias) in float32.
TEST(Weights, DeviceBytesFollowTheComputeDtype) {
  auto m = Model::load(data_dir() / "models/llama");  // no biases, untied head
  const ArchSpec& a = m->spec();
  const int64_t d = a.d_model, f = a.d_ff, qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
  const int64_t matrices = a.vocab_size * d * (a.tied_head ? 1 : 2) + a.n_layers * (d * (qd + 2 * kd) + qd * d + 3 * d * f);
  const int64_t norms = (2 * a.n_layers + 1) * d;
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    EXPECT_EQ(device_weight_bytes(m->stored_weights(), t), uint64_t(matrices) * dtype_size(t) + uint64_t(norms) * 4);
  const uint64_t need = device_weight_bytes(m->stored_weights(), DType::BF16);
  EXPECT_NO_THROW(check_device_budget(m->stored_weights(), DType::BF16, need));
  try {
    check_device_budget(m->stored_weights(), DType::BF16, need - 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(m->stored_weights().path), std::string::npos) << msg;
    EXPECT_NE(msg.find("GPU memory in BF16"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace cascade
