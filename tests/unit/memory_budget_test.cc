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
  EXPECT_EQ(widened_weight_bytes(*bf16.weights), element_bytes(*bf16.weights));
  const Checkpoint f32 = open_checkpoint(data_dir() / "models/llama");  // F32: views into the map
  EXPECT_EQ(widened_weight_bytes(*f32.weights), 0u);
  const Checkpoint q = open_checkpoint(data_dir() / "gguf/tiny_llama_bpe.gguf");
  EXPECT_GT(widened_weight_bytes(*q.weights), 0u);
}

TEST(MemoryBudget, TooLittleMemoryIsOneClearError) {
  const Checkpoint ck = open_checkpoint(data_dir() / "models/gptj");
  const uint64_t need = widened_weight_bytes(*ck.weights);
  EXPECT_NO_THROW(check_memory_budget(*ck.weights, "gptj", need));
  try {
    check_memory_budget(*ck.weights, "gptj", need - 1);
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

// RLIMIT_AS (ulimit -v) lowers the budget to the headroom under it: with half the model's need left,
// loading is refused. Run in a child, since the limit cannot be raised again; a sanitizer's shadow
// memory reserves terabytes of address space, so sanitized builds skip it.
TEST(MemoryBudget, AddressSpaceLimitLowersTheBudget) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizers do not run under ulimit -v";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << "sanitizers do not run under ulimit -v";
#endif
#endif
  const Checkpoint ck = open_checkpoint(data_dir() / "models/gptj");
  const uint64_t need = widened_weight_bytes(*ck.weights);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ifstream statm("/proc/self/statm");
    uint64_t pages = 0;
    statm >> pages;
    rlimit as{};
    getrlimit(RLIMIT_AS, &as);
    as.rlim_cur = pages * uint64_t(sysconf(_SC_PAGESIZE)) + need / 2;
    if (setrlimit(RLIMIT_AS, &as) != 0) _exit(3);
    if (available_memory() >= need) _exit(1);
    try {
      check_memory_budget(*ck.weights, "gptj");
    } catch (const Error&) {
      _exit(0);
    }
    _exit(2);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the limit was not seen, 2: no error, 3: setrlimit failed";
}

}  // namespace
}  // namespace cascade
