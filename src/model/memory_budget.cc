// Memory budget: sizes come from the checkpoint's tensor table (shape products with overflow
// saturating, so a lying table reads as "too large" rather than as a small number); the limits from
// sysconf, /sys/fs/cgroup/memory.max and getrlimit. Physical memory, not free memory, is the bound:
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

}  // namespace

uint64_t widened_weight_bytes(const WeightSource& src) {
  uint64_t total = 0;
  for (const TensorMeta& t : src.list()) {
    if (t.dtype == "F32") continue;
    uint64_t bytes = sizeof(float);
    for (int64_t d : t.shape)
      if (__builtin_mul_overflow(bytes, uint64_t(std::max<int64_t>(d, 0)), &bytes)) return kMax;
    if (__builtin_add_overflow(total, bytes, &total)) return kMax;
  }
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

void check_memory_budget(const WeightSource& src, const std::string& source, uint64_t available) {
  const uint64_t need = widened_weight_bytes(src);
  if (need > available)
    fail(source, ": the weights need ", need == kMax ? std::string("more than 2^64 bytes") : mib(need),
         " of memory once widened to float32, more than the ", mib(available),
         " this process can use (physical memory, cgroup limit, ulimit -v); nothing was loaded");
}

}  // namespace cascade
