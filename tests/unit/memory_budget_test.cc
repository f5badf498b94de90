// The load-time memory check (model/memory_budget.h): what widening costs per format, and a model
// that does not fit failing with one message before its weights are read, under a faked limit.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "model/memory_budget.h"
#include "model/model.h"
#include "support/sanitizers.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

using test::data_dir;

uint64_t element_bytes(const WeightSource& src) {
  uint64_t n = 0;
  for (const auto& t : src.list()) {
    uint64_t e = 4;
    for (int64_t d : t.shape) e *= uint64_t(d);
    n += e;
  }
  return n;
}

TEST(MemoryBudget, Bf16WeightsCountAsFloat32AndF32AsFree) {
  const Checkpoint bf16 = open_checkpoint(data_dir() / "models/gptj");  // stored as BF16
  EXPECT_EQ(host_weight_bytes(*bf16.weights, Device::Cpu), element_bytes(*bf16.weights));
  const Checkpoint f32 = open_checkpoint(data_dir() / "models/llama");  // F32: views into the map
  EXPECT_EQ(host_weight_bytes(*f32.weights, Device::Cpu), 0u);
  const Checkpoint q = open_checkpoint(data_dir() / "gguf/tiny_llama_bpe.gguf");
  EXPECT_GT(host_weight_bytes(*q.weights, Device::Cpu), 0u);
}

// On the GPU the host holds no widened copy: F32/F16/BF16 go from the map to the device; only
// quantised GGUF types are dequantised on the host.
TEST(MemoryBudget, TheGpuPathWidensNothingOnTheHost) {
  const Checkpoint bf16 = open_checkpoint(data_dir() / "models/gptj");
  EXPECT_EQ(host_weight_bytes(*bf16.weights, Device::Cuda), 0u);
  const Checkpoint q = open_checkpoint(data_dir() / "gguf/tiny_llama_bpe.gguf");
  EXPECT_GT(host_weight_bytes(*q.weights, Device::Cuda), 0u);
  EXPECT_LE(host_weight_bytes(*q.weights, Device::Cuda), host_weight_bytes(*q.weights, Device::Cpu));
  EXPECT_NO_THROW(check_memory_budget(*bf16.weights, "gptj", Device::Cuda, 0));
}

TEST(MemoryBudget, TooLittleMemoryIsOneClearError) {
  const Checkpoint ck = open_checkpoint(data_dir() / "models/gptj");
  const uint64_t need = host_weight_bytes(*ck.weights, Device::Cpu);
  EXPECT_NO_THROW(check_memory_budget(*ck.weights, "gptj", Device::Cpu, need));
  try {
    check_memory_budget(*ck.weights, "gptj", Device::Cpu, need - 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gptj: the weights need"), std::string::npos) << m;
    EXPECT_NE(m.find("nothing was loaded"), std::string::npos) << m;
  }
}

TEST(MemoryBudget, ThisMachineHasMemoryAndTheFixturesFit) {
  EXPECT_GT(available_memory(), uint64_t(64) << 20);
  EXPECT_NO_THROW(Model::load(data_dir() / "models/gptj"));
}

// RLIMIT_AS (ulimit -v) lowers the budget to the headroom under it: with half the model's widened
// size left, the CPU's widening, on the model's first use there, is refused. Run in a child, since the limit cannot be raised again; a sanitizer's shadow
// memory reserves terabytes of address space, so sanitized builds skip it.
TEST(MemoryBudget, AddressSpaceLimitLowersTheBudget) {
  if (test::kSanitized) GTEST_SKIP() << "sanitizers do not run under ulimit -v";
  const Checkpoint ck = open_checkpoint(data_dir() / "models/gptj");
  const uint64_t need = host_weight_bytes(*ck.weights, Device::Cpu);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The views are mapped before the limit (the tiny fixture's parse alone would not fit under it).
    std::unique_ptr<Model> m;
    try {
      m = Model::load(data_dir() / "models/gptj");
    } catch (const Error&) {
      _exit(4);
    }
    std::ifstream statm("/proc/self/statm");
    uint64_t pages = 0;
    statm >> pages;
    rlimit as{};
    getrlimit(RLIMIT_AS, &as);
    as.rlim_cur = pages * uint64_t(sysconf(_SC_PAGESIZE)) + need / 2;
    if (setrlimit(RLIMIT_AS, &as) != 0) _exit(3);
    if (available_memory() >= need) _exit(1);
    try {
      (void)m->new_sequence();  // the first CPU use widens, and does not fit
    } catch (const Error&) {
      _exit(0);
    }
    _exit(2);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the limit was not seen, 2: no error, 3: setrlimit failed, 4: loading failed";
}

}  // namespace
}  // namespace cascade
