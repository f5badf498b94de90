// Greedy decisions for decoding on the device (SPEC 4; what select::IncrementalSelector does on the
// host for rule greedy): the representatives' rows stay on the device as the features came (float32,
// or the 16-bit compute dtype they were widened from, which holds them exactly: a quarter of float64's
// bytes, which every decoding step reads), each with its float64 mean and inverse norm, so a
// normalised component is recomputed where it is read, the float64 value the prefill's selection used,
// bit for bit. A new token's correlations with those rows are one kernel (a warp a row, every
// decision's float64 sums in one order), and the best representative (ties: the earliest) comes back
// to the host in one 16-byte copy, the step's only synchronisation. The host keeps the
// representatives' positions, so a step returns the same Step as the CPU's selector (up to the order
// of the float64 sums, ~1e-16 in rho). steps() decides a pass of several tokens with one
// synchronisation: their correlations with the representatives and with each other, then one warp
// walks the tokens in order, each seeing the representatives the earlier ones became. The resident
// steps keep even the decision on the device (a decoding step that a CUDA graph can replay): the
// representatives' count lives there, a step's decision is written where the caller's kernels read
// it, and the host catches up when it asks (sync_resident). CUDA build only: ADA's GPU layers
// (attention/ada_attention_cuda.cu) are its one user.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "select/gpu_selection.h"
#include "select/incremental.h"

namespace cascade::select::gpu {

class DeviceIncremental {
 public:
  // Continues a prefill: z its float64 features on the device, x_device the float32 features [T, d]
  // (device) z was normalised from, rows_dtype a dtype that holds them exactly (F32, or the F16/BF16
  // compute dtype they were widened from), sel their selection (rule greedy). Keeps only the
  // representatives' rows, so z and x can be released afterwards.
  DeviceIncremental(const DeviceFeatures& z, const float* x_device, DType rows_dtype, const Selection& sel,
                    const Options& opts);
  ~DeviceIncremental();
  DeviceIncremental(DeviceIncremental&&) noexcept;
  DeviceIncremental& operator=(DeviceIncremental&&) noexcept;

  // Decides token T() from its features x [d] float32 in device memory (on cuda::context().stream).
  IncrementalSelector::Step step(const float* x_device);
  // Decides tokens T() .. T() + n - 1 from their features x [n, d] float32 in device memory, in order:
  // the same Steps as n calls of step() (up to the order of the float64 sums).
  std::vector<IncrementalSelector::Step> steps(const float* x_device, int64_t n);
  int64_t T() const;  // tokens decided, resident steps not yet synchronised excluded
  int64_t bytes() const;  // device memory held (the rows', their statistics' and rho's capacity)

  // ---- resident steps ----
  // Before each pass of resident steps, outside any graph capture: n more steps will run (room for
  // each of them becoming a representative). step() and steps() need sync_resident() first.
  void plan_resident(int64_t n);
  // Decides the next token from x [d] float32 (device) without coming back to the host; no launch
  // argument depends on the decisions. decision() then holds {is_rep, index}: the token's index among
  // the representatives when it is one (its row was appended), else its best representative's.
  void step_resident(const float* x_device);
  const int32_t* decision() const;
  // The resident steps' decisions since the last call, in order (a download: it synchronises), with
  // the host's state caught up; empty when there were none.
  std::vector<IncrementalSelector::Step> sync_resident();
  // What the resident steps' launches were taken from (a captured graph's key): the rows' capacity
  // (a grid) and the device buffers their kernels read or write.
  void graph_key(std::vector<uintptr_t>& shape, std::vector<uintptr_t>& buffers) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cascade::select::gpu
