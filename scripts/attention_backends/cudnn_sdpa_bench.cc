// cuDNN's fused attention (SDPA through cudnn-frontend's graph API), called the way the engine would
// call it: Q [T, heads * hd] and K, V [T, kv_heads * hd] in the engine's row layout (strides, no
// transposes), causal with the diagonal at the bottom right (query i sees keys j <= i + nk - nq, the
// rule of exact prefill and of a continuation over a kept cache), fp16 or bf16, fp32 softmax.
//
// Not part of the engine's build: it measures what cuDNN would give before the engine depends on it
// (BENCHMARKS.md "GPU attention: our kernel, cuDNN or FlashInfer"). Each shape is checked against a
// float64 statement on the host and timed (probe_common.h); plan building is excluded from the time,
// as an engine builds one plan per shape once. One JSON line per shape.
//
// Build (device_run.sh does it on the GPU machine, against the cuDNN of PyTorch's pip packages):
//   g++ -O2 -std=c++20 -DCUDNN_FRONTEND_SKIP_JSON_LIB -I FRONTEND/include -I CUDNN/include
//       -I CUDA/include cudnn_sdpa_bench.cc -L CUDNN/lib -l:libcudnn.so.9 -lcudart -lnvrtc -lcuda
// Usage: cudnn_sdpa_bench [T,heads,kv_heads,head_dim,bf16|f16 ...]
#include <unordered_map>

#include "cudnn_frontend.h"
#include "probe_common.h"

namespace fe = cudnn_frontend;

namespace {

void check(fe::error_t e, const char* what) {
  if (e.is_bad()) probe::die(std::string(what) + ": " + e.get_message());
}

constexpr int64_t kQ = 1, kK = 2, kV = 3, kO = 4;

void build(fe::graph::Graph& g, cudnnHandle_t handle, const probe::Shape& s, float scale) {
  g.set_io_data_type(s.bf16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  // Logical [batch, heads, seq, hd]; the engine's rows are [seq, heads * hd], so seq has stride ld.
  auto tensor = [&](const char* name, int64_t uid, int64_t h, int64_t ld) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({1, h, s.T, s.hd})
                        .set_stride({s.T * ld, s.hd, ld, 1}));
  };
  auto q = tensor("Q", kQ, s.heads, s.ldq());
  auto k = tensor("K", kK, s.kv_heads, s.ldkv());
  auto v = tensor("V", kV, s.kv_heads, s.ldkv());
  auto opts = fe::graph::SDPA_attributes()
                  .set_name("sdpa")
                  .set_generate_stats(false)
                  .set_causal_mask_bottom_right(true)
                  .set_attn_scale(scale);
  auto [o, stats] = g.sdpa(q, k, v, opts);
  (void)stats;
  o->set_output(true).set_uid(kO).set_dim({1, s.heads, s.T, s.hd}).set_stride({s.T * s.ldq(), s.hd, s.ldq(), 1});
  check(g.build(handle, {fe::HeurMode_t::A}), "building the SDPA graph");
}

void run(cudnnHandle_t handle, cudaStream_t stream, const probe::Shape& s) {
  const float scale = 1.f / std::sqrt(float(s.hd));
  probe::Problem p(s);
  fe::graph::Graph g;
  build(g, handle, s, scale);
  int64_t workspace = 0;
  check(g.get_workspace_size(workspace), "workspace size");
  void* ws = nullptr;
  if (workspace > 0) probe::check(cudaMalloc(&ws, size_t(workspace)), "cudaMalloc workspace");
  std::unordered_map<int64_t, void*> pack{{kQ, p.dq}, {kK, p.dk}, {kV, p.dv}, {kO, p.dout}};
  auto launch = [&] { check(g.execute(handle, pack, ws), "executing SDPA"); };
  launch();
  probe::check(cudaStreamSynchronize(stream), "first launch");
  const double err = p.relative_error(scale);
  probe::print_row("cudnn-frontend", s, probe::median_ms(launch, stream), err);
  cudaFree(ws);
}

}  // namespace

int main(int argc, char** argv) {
  const auto shapes = probe::parse_shapes(argc, argv);
  namespace shim = fe::detail;
  cudnnHandle_t handle;
  if (const auto st = shim::create_handle(&handle); st != CUDNN_STATUS_SUCCESS)
    probe::die("cudnnCreate failed with status " + std::to_string(int(st)));
  cudaStream_t stream;
  probe::check(cudaStreamCreate(&stream), "stream");
  shim::set_stream(handle, stream);
  std::fprintf(stderr, "cuDNN %lld, frontend %d.%d.%d\n", (long long)shim::get_backend_version(),
               CUDNN_FRONTEND_MAJOR_VERSION, CUDNN_FRONTEND_MINOR_VERSION, CUDNN_FRONTEND_PATCH_VERSION);
  for (const auto& s : shapes) run(handle, stream, s);
  shim::destroy_handle(handle);
  return 0;
}
