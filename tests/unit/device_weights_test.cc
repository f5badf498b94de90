// The GPU's weights made from the stored views (model/device_weights_cuda.cu) against the upload
// they replace, which widened every tensor to float32 on the host and converted it there: for every
// conformance fixture (F16, BF16 and F32 files) and compute dtype, each device matrix, bias and norm
// is that conversion of the CPU's float32 weights, bit for bit. And ops::gpu::convert equals its CPU
// twin for every pair of dtypes, transposed or not, into packed rows or rows with a wider stride (a
// piece of a larger matrix; the bytes between rows are left as they were). Skips when there is no GPU.
#include <gtest/gtest.h>

#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <cstring>
#include <random>
#include <vector>

#include "cuda/context.h"
#include "model/device_weights.cuh"
#include "model/model.h"
#include "ops/convert.h"
#include "ops/cuda_ops.h"
#include "support/test_paths.h"
#include "support/test_seed.h"

namespace cascade {
namespace {

using cuda_decoder::Bytes;
using test::data_dir;

class DeviceWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
  }
};

std::vector<unsigned char> download(const void* p, size_t bytes) {
  std::vector<unsigned char> h(bytes);
  EXPECT_EQ(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

// The former host upload of one linear: [out, in] float32 (in_major read transposed), converted to t.
std::vector<unsigned char> host_converted(const Linear& l, DType t) {
  std::vector<float> m(size_t(l.out * l.in));
  for (int64_t j = 0; j < l.out; ++j)
    for (int64_t i = 0; i < l.in; ++i) m[size_t(j * l.in + i)] = l.in_major ? l.w[i * l.ld + j] : l.w[j * l.ld + i];
  std::vector<unsigned char> out(m.size() * dtype_size(t));
  ops::convert(DType::F32, m.data(), l.out, l.in, t, out.data(), l.in, false);
  return out;
}

std::vector<unsigned char> host_converted(const float* v, int64_t n, DType t) {
  std::vector<unsigned char> out(size_t(n) * dtype_size(t));
  ops::convert(DType::F32, v, 1, n, t, out.data(), n, false);
  return out;
}

std::vector<unsigned char> concat(std::initializer_list<std::vector<unsigned char>> parts) {
  std::vector<unsigned char> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST_F(DeviceWeights, ConvertMatchesTheCpuTwin) {
  const test::Seed seed(7);
  std::mt19937 rng(seed.value());
  std::normal_distribution<float> dist(0.f, 3.f);
  const int64_t rows = 37, cols = 53;
  std::vector<float> f32(size_t(rows * cols));
  for (float& x : f32) x = dist(rng);
  for (DType from : {DType::F32, DType::F16, DType::BF16})
    for (DType to : {DType::F32, DType::F16, DType::BF16})
      for (bool transpose : {false, true})
        for (int64_t pad : {0, 11}) {
          std::vector<unsigned char> src(f32.size() * dtype_size(from));
          ops::convert(DType::F32, f32.data(), rows, cols, from, src.data(), cols, false);
          const int64_t ld = (transpose ? rows : cols) + pad, dst_rows = transpose ? cols : rows;
          std::vector<unsigned char> want(size_t(dst_rows * ld) * dtype_size(to), 0xff);
          ops::convert(from, src.data(), rows, cols, to, want.data(), ld, transpose);
          Bytes d_src(src.size()), d_dst(want.size());
          ASSERT_EQ(cudaMemcpy(d_src.data(), src.data(), src.size(), cudaMemcpyHostToDevice), cudaSuccess);
          ASSERT_EQ(cudaMemset(d_dst.data(), 0xff, want.size()), cudaSuccess);
          ops::gpu::convert(from, d_src.data(), rows, cols, to, d_dst.data(), ld, transpose, cuda::context().stream);
          ASSERT_EQ(cudaStreamSynchronize(cuda::context().stream), cudaSuccess);
          EXPECT_EQ(download(d_dst.data(), want.size()), want)
              << dtype_name(from) << " -> " << dtype_name(to) << (transpose ? " transposed" : "") << " ld " << ld;
        }
}

TEST_F(DeviceWeights, UploadEqualsTheHostConversionOfTheFloat32Weights) {
  for (const char* name : {"gpt2", "opt", "gptj", "neox", "llama_gqa"})
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      const std::string what = std::string(name) + " " + dtype_name(t);
      auto m = Model::load(data_dir() / "models" / name);
      const cuda_decoder::DeviceWeights d = cuda_decoder::upload_weights(m->spec(), m->stored_weights(), t);
      const ModelWeights& w = m->weights();
      EXPECT_EQ(download(d.embed.data(), d.embed.size()), host_converted(w.embed.data(), w.embed.numel(), t)) << what;
      for (size_t i = 0; i < w.layers.size(); ++i) {
        const LayerWeights& l = w.layers[i];
        const cuda_decoder::DevLayer& dl = d.layers[i];
        EXPECT_EQ(download(dl.qkv.w.data(), dl.qkv.w.size()),
                  concat({host_converted(l.q, t), host_converted(l.k, t), host_converted(l.v, t)}))
            << what << " layer " << i << " qkv";
        EXPECT_EQ(download(dl.down.w.data(), dl.down.w.size()), host_converted(l.down, t)) << what << " down";
        if (l.q.bias) {
          EXPECT_EQ(download(dl.qkv.b.data(), dl.qkv.b.size()),
                    concat({host_converted(l.q.bias, l.q.out, t), host_converted(l.k.bias, l.k.out, t),
                            host_converted(l.v.bias, l.v.out, t)}))
              << what << " qkv bias";
        }
        EXPECT_EQ(download(dl.n1.g.data(), dl.n1.g.bytes()), host_converted(l.norm1.weight.data(), l.norm1.weight.numel(), DType::F32))
            << what << " norm1";
      }
      EXPECT_EQ(d.head_tied, !d.head.present()) << what;
      if (!d.head_tied) EXPECT_EQ(download(d.head.w.data(), d.head.w.size()), host_converted(w.head, t)) << what << " head";
    }
}

}  // namespace
}  // namespace cascade

#else
TEST(DeviceWeights, NotBuilt) { GTEST_SKIP() << cascade::cuda::describe_gpu(); }
#endif
