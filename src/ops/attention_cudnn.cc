// ops/attention_cudnn.h: cuDNN's SDPA graph, built per shape through cudnn-frontend (header only,
// loading libcudnn at run time), on the engine's row layout: Q [nq, heads * hd] with row stride ldq
// is the logical [1, heads, nq, hd] tensor with strides {nq * ldq, hd, ldq, 1}, and so K, V and O;
// no copy or transpose. The causal mask is cuDNN's bottom-right diagonal, the rule causal_by_index
// states. Softmax and both products accumulate in float32, as Cascade's kernel does.
#ifdef CASCADE_WITH_CUDNN
#include "ops/attention_cudnn.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "cuda/buffer.h"
#include "cudnn_frontend.h"

// cudnn-frontend's dynamic loading calls the backend through this handle, which its user opens.
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}

namespace cascade::ops::gpu::cudnn_sdpa {

namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kQ = 1, kK = 2, kV = 3, kO = 4;  // the graph's tensor uids

// libcudnn and one handle, opened on first use for the life of the process.
struct Library {
  cudnnHandle_t handle = nullptr;
  size_t version = 0;
  std::string why;  // empty when usable
};

const Library& library() {
  static const Library lib = [] {
    Library l;
    const char* named = std::getenv("CASCADE_CUDNN_LIBRARY");
    const std::string file = named && *named ? named : "libcudnn.so.9";
    void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      l.why = "cannot load " + file + " (" + (e ? e : "no reason given") + ")" +
              (named && *named ? "" : "; CASCADE_CUDNN_LIBRARY may name the file");
      return l;
    }
    fe::cudnn_dlhandle = h;
    try {
      l.version = fe::detail::get_backend_version();
      if (l.version < 90000) {
        l.why = file + " is cuDNN " + std::to_string(l.version) + ", older than 9";
        return l;
      }
      if (const cudnnStatus_t st = fe::detail::create_handle(&l.handle); st != CUDNN_STATUS_SUCCESS)
        l.why = std::string("cudnnCreate failed (") + fe::detail::get_error_string(st) + ")";
    } catch (const std::exception& e) {
      l.why = std::string("cuDNN: ") + e.what();
    }
    return l;
  }();
  return lib;
}

// What fixes a plan: everything but the pointers.
using Shape = std::tuple<DType, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float>;
Shape shape_of(const AttentionArgs& a) {
  return {a.dtype, a.nq, a.nk, a.heads, a.kv_heads, a.head_dim, a.ldq, a.ldkv, a.ldo, a.scale};
}

struct Plan {
  fe::graph::Graph graph;
  cuda::Buffer<unsigned char> workspace;
  std::string error;  // set when cuDNN refused the shape: never retried
};

std::unique_ptr<Plan> build(const AttentionArgs& a, cudnnHandle_t handle) {
  auto p = std::make_unique<Plan>();
  fe::graph::Graph& g = p->graph;
  g.set_io_data_type(a.dtype == DType::BF16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const auto rows = [&](const char* name, int64_t uid, int64_t heads, int64_t n, int64_t ld) {
    return fe::graph::Tensor_attributes()
        .set_name(name)
        .set_uid(uid)
        .set_dim({1, heads, n, a.head_dim})
        .set_stride({n * ld, a.head_dim, ld, 1});
  };
  auto q = g.tensor(rows("Q", kQ, a.heads, a.nq, a.ldq));
  auto k = g.tensor(rows("K", kK, a.kv_heads, a.nk, a.ldkv));
  auto v = g.tensor(rows("V", kV, a.kv_heads, a.nk, a.ldkv));
  auto opts = fe::graph::SDPA_attributes()
                  .set_name("causal_attention")
                  .set_generate_stats(false)
                  .set_causal_mask_bottom_right(true)
                  .set_attn_scale(a.scale);
  auto [o, stats] = g.sdpa(q, k, v, opts);
  (void)stats;
  o->set_output(true)
      .set_uid(kO)
      .set_dim({1, a.heads, a.nq, a.head_dim})
      .set_stride({a.nq * a.ldo, a.head_dim, a.ldo, 1});
  fe::error_t e = g.build(handle, {fe::HeurMode_t::A});
  int64_t bytes = 0;
  if (e.is_good()) e = g.get_workspace_size(bytes);
  if (e.is_bad()) {
    p->error = "cuDNN has no plan for this attention (" + e.get_message() + ")";
    return p;
  }
  if (bytes > 0) p->workspace = cuda::Buffer<unsigned char>(size_t(bytes));
  return p;
}

bool aligned16(const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; }

}  // namespace

bool built() { return true; }

bool available(std::string* why) {
  const Library& l = library();
  if (why) *why = l.why;
  return l.why.empty();
}

bool applies(const AttentionArgs& a) {
  return a.causal_by_index && (a.dtype == DType::F16 || a.dtype == DType::BF16) && a.head_dim % 8 == 0 &&
         a.head_dim <= 256 && a.nq >= 16 && a.nq <= a.nk && !a.bias && !a.window && !a.own_mask &&
         a.ldq % 8 == 0 && a.ldkv % 8 == 0 && a.ldo % 8 == 0 && aligned16(a.q) && aligned16(a.k) && aligned16(a.v) &&
         aligned16(a.out);
}

bool run(const AttentionArgs& a, CUstream_st* s, std::string* why) {
  const Library& l = library();
  if (!l.why.empty()) {
    *why = l.why;
    return false;
  }
  static std::mutex mutex;
  static std::map<Shape, std::unique_ptr<Plan>> plans;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(shape_of(a));
  if (it == plans.end()) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &capturing) != cudaSuccess || capturing != cudaStreamCaptureStatusNone) {
      *why = "no cuDNN plan for this shape yet, and none is built inside a CUDA graph capture";
      return false;
    }
    try {
      it = plans.emplace(shape_of(a), build(a, l.handle)).first;
    } catch (const std::exception& e) {
      *why = std::string("cuDNN: ") + e.what();
      return false;
    }
  }
  Plan& p = *it->second;
  if (!p.error.empty()) {
    *why = p.error;
    return false;
  }
  std::unordered_map<int64_t, void*> pack{{kQ, const_cast<void*>(a.q)},
                                          {kK, const_cast<void*>(a.k)},
                                          {kV, const_cast<void*>(a.v)},
                                          {kO, a.out}};
  try {
    if (const cudnnStatus_t st = fe::detail::set_stream(l.handle, s); st != CUDNN_STATUS_SUCCESS) {
      *why = std::string("cudnnSetStream failed (") + fe::detail::get_error_string(st) + ")";
      return false;
    }
    if (fe::error_t e = p.graph.execute(l.handle, pack, p.workspace.data()); e.is_bad()) {
      *why = "cuDNN's attention failed (" + e.get_message() + ")";
      return false;
    }
  } catch (const std::exception& e) {
    *why = std::string("cuDNN: ") + e.what();
    return false;
  }
  return true;
}

std::string describe() {
  std::string why;
  if (!available(&why)) return "cuDNN unavailable: " + why;
  const size_t v = library().version;  // 9.19.0 is 91900
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100) +
         " (cudnn-frontend " + std::to_string(CUDNN_FRONTEND_MAJOR_VERSION) + "." +
         std::to_string(CUDNN_FRONTEND_MINOR_VERSION) + "." + std::to_string(CUDNN_FRONTEND_PATCH_VERSION) + ")";
}

}  // namespace cascade::ops::gpu::cudnn_sdpa
#endif
