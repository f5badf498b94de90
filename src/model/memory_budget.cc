// Memory budget: host sizes come from the checkpoint's tensor table (shape products with overflow
// saturating, so a lying table reads as "too large" rather than as a small number), device sizes
// from the mapped weights (shapes already checked against the architecture); the limits from
// sysconf, /sys/fs/cgroup/memory.max and getrlimit, and the GPU's free memory. Physical memory, not free memory, is the bound:
// the page cache counts as free-able, and the check is for models that can never fit.
#include "model/memory_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace cascade {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

std::string mib(uint64_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << double(bytes) / double(1 << 20) << " MiB";
  return os.str();
}

// The process's current address-space size (what RLIMIT_AS counts), from /proc/self/statm.
uint64_t address_space_used() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  statm >> pages;
  return pages * uint64_t(sysconf(_SC_PAGESIZE));
}

// The float dtypes a GPU upload reads in place from the map.
bool read_in_place(const std::string& dtype) { return dtype == "F32" || dtype == "F16" || dtype == "BF16"; }

uint64_t saturating_add(uint64_t a, uint64_t b) { return __builtin_add_overflow(a, b, &a) ? kMax : a; }

uint64_t linear_bytes(const StoredLinear& l, size_t weight_elem, size_t bias_elem) {
  if (!l.present()) return 0;
  return uint64_t(l.out) * uint64_t(l.in) * weight_elem + (l.b.empty() ? 0 : uint64_t(l.out) * bias_elem);
}

uint64_t norm_bytes(const StoredNorm& n) { return (uint64_t(n.weight.numel()) + uint64_t(n.bias.numel())) * sizeof(float); }

}  // namespace

uint64_t host_weight_bytes(const WeightSource& src, Device d) {
  uint64_t total = 0;
  for (const TensorMeta& t : src.list()) {
    if (t.dtype == "F32" || (d == Device::Cuda && read_in_place(t.dtype))) continue;
    uint64_t bytes = sizeof(float);
    for (int64_t dim : t.shape)
      if (__builtin_mul_overflow(bytes, uint64_t(std::max<int64_t>(dim, 0)), &bytes)) return kMax;
    total = saturating_add(total, bytes);
  }
  return total;
}

uint64_t device_weight_bytes(const StoredWeights& w, DType t) {
  const size_t es = dtype_size(t);
  uint64_t total = uint64_t(w.embed.numel()) * es + uint64_t(w.positions.numel()) * es;
  total += linear_bytes(w.project_in, es, es) + linear_bytes(w.project_out, es, es);
  for (const StoredLayer& l : w.layers) {
    total += norm_bytes(l.norm1) + norm_bytes(l.norm2);
    for (const StoredLinear* p : {&l.q, &l.k, &l.v, &l.o, &l.up, &l.gate, &l.down}) total += linear_bytes(*p, es, es);
  }
  total += norm_bytes(w.final_norm);
  if (!w.head_tied) total += linear_bytes(w.head, es, sizeof(float));  // float32 logits: float32 bias
  return total;
}

uint64_t available_memory() {
  uint64_t avail = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  std::ifstream cgroup("/sys/fs/cgroup/memory.max");  // "max" or a byte count
  if (uint64_t limit = 0; cgroup >> limit) avail = std::min(avail, limit);
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
    const uint64_t used = address_space_used();
    avail = std::min(avail, as.rlim_cur > used ? uint64_t(as.rlim_cur) - used : 0);
  }
  return avail;
}

void check_memory_budget(const WeightSource& src, const std::string& source, Device d, uint64_t available) {
  const uint64_t need = host_weight_bytes(src, d);
  if (need > available)
    fail(source, ": the weights need ", need == kMax ? std::string("more than 2^64 bytes") : mib(need), " of memory once ",
         d == Device::Cpu ? "widened to float32" : "dequantised to float32 for the upload", ", more than the ", mib(available),
         " this process can use (physical memory, cgroup limit, ulimit -v); nothing was loaded");
}

void check_device_budget(const StoredWeights& w, DType t, uint64_t free_bytes) {
  const uint64_t need = device_weight_bytes(w, t);
  if (need > free_bytes)
    fail(w.path, ": the weights need ", mib(need), " of GPU memory in ", dtype_name(t), ", more than the ", mib(free_bytes),
         " free on the GPU; nothing was uploaded");
}

}  // namespace cascade
