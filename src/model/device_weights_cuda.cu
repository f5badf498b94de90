// upload_weights (model/device_weights.cuh). The plan is made on the calling thread: every device
// buffer is allocated and the copies that fill it are listed as pieces (host rows -> device rows,
// with the conversion and transpose each needs). The copies then run in chunks of whole rows on
// several host threads, each with two pinned staging buffers so that reading the next chunk from the
// map overlaps the upload and conversion of the previous one.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "cuda/check.h"
#include "io/mmap_file.h"
#include "model/device_weights.cuh"
#include "model/memory_budget.h"
#include "ops/cuda_ops.h"

namespace cascade::cuda_decoder {

namespace {

// A staging buffer's size: large enough that a copy's fixed costs vanish, small enough that a few
// threads' pinned buffers stay a few hundred MiB.
constexpr size_t kChunkBytes = size_t(16) << 20;
constexpr unsigned kMaxThreads = 8;

// One copy to the device: `rows` rows of `cols` elements of dtype `from`, `pitch` bytes apart at src,
// land in dtype `to` at dst: element (r, c) at dst[r * ld + c], or at dst[c * ld + r] when transposed.
struct Piece {
  const unsigned char* src = nullptr;
  size_t pitch = 0;
  bool mapped = false;  // src lies in a file mapping (its pages can be dropped once read)
  int64_t rows = 0, cols = 0;
  DType from = DType::F32, to = DType::F32;
  bool transpose = false;
  unsigned char* dst = nullptr;
  int64_t ld = 0;

  size_t row_bytes() const { return size_t(cols) * dtype_size(from); }
  Piece slice(int64_t r0, int64_t r1) const {
    Piece p = *this;
    p.src += size_t(r0) * pitch;
    p.rows = r1 - r0;
    p.dst += size_t(transpose ? r0 : r0 * ld) * dtype_size(to);
    return p;
  }
  // The stored bytes are the device's as they are: no conversion, rows contiguous at dst.
  bool direct() const { return from == to && !transpose && ld == cols; }
};

class Planner {
 public:
  explicit Planner(DType t) : t_(t) {}

  // A row-major matrix as stored, in the compute dtype.
  Bytes matrix(const TensorView& v) {
    if (v.empty()) return {};
    const int64_t rows = v.shape[0], cols = rows ? v.numel() / rows : 0;
    Bytes b(size_t(v.numel()) * dtype_size(t_));
    add(v, 0, size_t(cols) * dtype_size(v.dtype), rows, cols, t_, false, b.data(), cols);
    return b;
  }

  // The parts' rows stacked into one [sum out, in] matrix; the bias (zeros for a part without one)
  // in bias_t.
  DevLinear stack(std::initializer_list<const StoredLinear*> parts, DType bias_t) {
    DevLinear d;
    d.in = (*parts.begin())->in;
    bool any_bias = false;
    for (const StoredLinear* l : parts) {
      CASCADE_CHECK(l->in == d.in, "stacked linears of different input widths");
      d.out += l->out;
      any_bias |= !l->b.empty();
    }
    const size_t es = dtype_size(t_), bs = dtype_size(bias_t);
    d.w = Bytes(size_t(d.out * d.in) * es);
    if (any_bias) {
      d.b = Bytes(size_t(d.out) * bs);
      CASCADE_CUDA_CHECK(cudaMemset(d.b.data(), 0, d.b.size()));
    }
    int64_t row = 0;
    for (const StoredLinear* l : parts) {
      weight(*l, d.w.data() + size_t(row * d.in) * es);
      if (!l->b.empty()) bias(*l, bias_t, d.b.data() + size_t(row) * bs);
      row += l->out;
    }
    return d;
  }

  DevNorm norm(const StoredNorm& n) {
    DevNorm d;
    if (!n.present()) return d;
    d.g = vector_f32(n.weight);
    if (!n.bias.empty()) d.b = vector_f32(n.bias);
    return d;
  }

  std::vector<Piece> pieces;

 private:
  cuda::Buffer<float> vector_f32(const TensorView& v) {
    cuda::Buffer<float> b(size_t(v.numel()));
    add(v, 0, v.nbytes(), 1, v.numel(), DType::F32, false, reinterpret_cast<unsigned char*>(b.data()), v.numel());
    return b;
  }

  // l's [out, in] weights at dst.
  void weight(const StoredLinear& l, unsigned char* dst) {
    const size_t es = dtype_size(l.w.dtype);
    if (l.in_major)  // stored [in, cols]: columns [first, first + out), transposed on the device
      add(l.w, size_t(l.first) * es, size_t(l.w.shape[1]) * es, l.in, l.out, t_, true, dst, l.in);
    else if (!l.block)
      add(l.w, size_t(l.first * l.in) * es, size_t(l.in) * es, l.out, l.in, t_, false, dst, l.in);
    else  // blocks of `block` rows, block_stride rows apart: one row of block * in elements each
      add(l.w, size_t(l.first * l.in) * es, size_t(l.block_stride * l.in) * es, l.out / l.block, l.block * l.in, t_,
          false, dst, l.block * l.in);
  }

  void bias(const StoredLinear& l, DType bias_t, unsigned char* dst) {
    const size_t es = dtype_size(l.b.dtype);
    const int64_t block = l.block ? l.block : l.out, stride = l.block ? l.block_stride : l.out;
    add(l.b, size_t(l.first) * es, size_t(stride) * es, l.out / block, block, bias_t, false, dst, block);
  }

  void add(const TensorView& v, size_t offset, size_t pitch, int64_t rows, int64_t cols, DType to, bool transpose,
           unsigned char* dst, int64_t ld) {
    if (rows * cols == 0) return;
    pieces.push_back(Piece{static_cast<const unsigned char*>(v.data) + offset, pitch, v.mapped, rows, cols, v.dtype, to,
                           transpose, dst, ld});
  }

  DType t_;
};

// One host thread's staging: two pinned buffers (one filled from the map while the other's upload
// and conversion run), the device scratch each converts from, and its own stream.
class Stager {
 public:
  explicit Stager(size_t capacity) {
    CASCADE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (Slot& s : slots_) {
      CASCADE_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&s.host), capacity, cudaHostAllocDefault));
      s.scratch = Bytes(capacity);
      CASCADE_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    }
  }
  ~Stager() {
    if (stream_) cudaStreamSynchronize(stream_);  // before the buffers it reads are freed
    for (Slot& s : slots_) {
      if (s.host) cudaFreeHost(s.host);
      if (s.done) cudaEventDestroy(s.done);
    }
    if (stream_) cudaStreamDestroy(stream_);
  }
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  void copy(const Piece& p) {
    Slot& s = slots_[used_++ % 2];
    CASCADE_CUDA_CHECK(cudaEventSynchronize(s.done));  // the slot's previous upload has left it
    const size_t rb = p.row_bytes(), bytes = rb * size_t(p.rows);
    if (p.pitch == rb) std::memcpy(s.host, p.src, bytes);
    else
      for (int64_t r = 0; r < p.rows; ++r) std::memcpy(s.host + size_t(r) * rb, p.src + size_t(r) * p.pitch, rb);
    if (p.mapped) MappedFile::drop_pages(p.src, size_t(p.rows - 1) * p.pitch + rb);
    if (p.direct()) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(p.dst, s.host, bytes, cudaMemcpyHostToDevice, stream_));
    } else {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(s.scratch.data(), s.host, bytes, cudaMemcpyHostToDevice, stream_));
      ops::gpu::convert(p.from, s.scratch.data(), p.rows, p.cols, p.to, p.dst, p.ld, p.transpose, stream_);
    }
    CASCADE_CUDA_CHECK(cudaEventRecord(s.done, stream_));
  }
  void finish() { CASCADE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  struct Slot {
    unsigned char* host = nullptr;
    Bytes scratch;
    cudaEvent_t done = nullptr;
  };
  cudaStream_t stream_ = nullptr;
  Slot slots_[2];
  size_t used_ = 0;
};

// Runs every piece, split into chunks of whole rows, on up to kMaxThreads threads.
void copy_all(const std::vector<Piece>& pieces) {
  size_t max_row = 0, total = 0;
  for (const Piece& p : pieces) {
    max_row = std::max(max_row, p.row_bytes());
    total += p.row_bytes() * size_t(p.rows);
  }
  const size_t capacity = std::max(max_row, std::min(kChunkBytes, total));
  std::vector<Piece> chunks;
  for (const Piece& p : pieces) {
    const int64_t step = int64_t(std::max<size_t>(1, capacity / p.row_bytes()));
    for (int64_t r0 = 0; r0 < p.rows; r0 += step) chunks.push_back(p.slice(r0, std::min(p.rows, r0 + step)));
  }
  if (chunks.empty()) return;
  // Large pieces first, so that no thread is left with one big copy at the end.
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const Piece& a, const Piece& b) { return a.row_bytes() * a.rows > b.row_bytes() * b.rows; });

  int device = 0;
  CASCADE_CUDA_CHECK(cudaGetDevice(&device));
  const size_t n_threads = std::min<size_t>({kMaxThreads, std::max(1u, std::thread::hardware_concurrency()), chunks.size()});
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      CASCADE_CUDA_CHECK(cudaSetDevice(device));
      Stager stager(capacity);
      for (size_t j; !failed && (j = next++) < chunks.size();) stager.copy(chunks[j]);
      stager.finish();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n_threads; ++i) threads.emplace_back(work);
  for (std::thread& th : threads) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

DeviceWeights upload_weights(const ArchSpec& a, const StoredWeights& w, DType t) {
  size_t free_bytes = 0, total_bytes = 0;
  CASCADE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  check_device_budget(w, t, free_bytes);
  Planner plan(t);
  DeviceWeights d;
  d.embed = plan.matrix(w.embed);
  if (a.learned_positions) d.positions = plan.matrix(w.positions);
  if (w.project_in.present()) d.project_in = plan.stack({&w.project_in}, t);
  if (w.project_out.present()) d.project_out = plan.stack({&w.project_out}, t);
  for (const StoredLayer& l : w.layers) {
    DevLayer dl;
    dl.n1 = plan.norm(l.norm1);
    dl.n2 = plan.norm(l.norm2);
    dl.qkv = plan.stack({&l.q, &l.k, &l.v}, t);
    dl.o = plan.stack({&l.o}, t);
    dl.up = plan.stack({&l.up}, t);
    if (l.gate.present()) dl.gate = plan.stack({&l.gate}, t);
    dl.down = plan.stack({&l.down}, t);
    d.layers.push_back(std::move(dl));
  }
  d.final_norm = plan.norm(w.final_norm);
  d.head_tied = w.head_tied;
  if (!d.head_tied) d.head = plan.stack({&w.head}, DType::F32);
  // The bias memsets ran on the legacy stream, which the copy threads' streams do not wait for.
  CASCADE_CUDA_CHECK(cudaDeviceSynchronize());
  copy_all(plan.pieces);
  return d;
}

}  // namespace cascade::cuda_decoder
