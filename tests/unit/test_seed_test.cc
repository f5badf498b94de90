// The seed helper of the randomized tests (support/test_seed.h): the default seed unless
// CASCADE_TEST_SEED gives one, further seeds moved with the first, and the seed in every failure.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "support/test_seed.h"

namespace cascade::test {
namespace {

// Sets CASCADE_TEST_SEED (or clears it) for one scope, then puts back what the run was given.
class SeedEnv {
 public:
  explicit SeedEnv(const char* value) {
    if (const char* v = std::getenv("CASCADE_TEST_SEED")) saved_ = v;
    if (value) setenv("CASCADE_TEST_SEED", value, 1);
    else unsetenv("CASCADE_TEST_SEED");
  }
  ~SeedEnv() {
    if (saved_) setenv("CASCADE_TEST_SEED", saved_->c_str(), 1);
    else unsetenv("CASCADE_TEST_SEED");
  }

 private:
  std::optional<std::string> saved_;
};

TEST(TestSeed, DefaultUnlessTheEnvironmentGivesOne) {
  {
    const SeedEnv env(nullptr);
    const Seed s(41);
    EXPECT_EQ(s.value(), 41u);
    EXPECT_EQ(s.derived(52), 52u);
  }
  {
    const SeedEnv env("1000");
    const Seed s(41);
    EXPECT_EQ(s.value(), 1000u);
    EXPECT_EQ(s.derived(52), 1011u);  // the same distance from the first seed as by default
  }
}

TEST(TestSeed, FailuresNameTheSeedAndTheReplay) {
  const SeedEnv env("77");
  EXPECT_NONFATAL_FAILURE(
      {
        const Seed s(5);
        ADD_FAILURE() << "a failure";
      },
      "random inputs from seed 77; replay with CASCADE_TEST_SEED=77");
}

TEST(TestSeed, AValueThatIsNotANumberFailsAndKeepsTheDefault) {
  const SeedEnv env("12abc");
  static uint64_t got = 0;  // EXPECT_NONFATAL_FAILURE's statement cannot reach a local variable
  EXPECT_NONFATAL_FAILURE(got = test_seed(9), "is not a decimal number");
  EXPECT_EQ(got, 9u);
}

}  // namespace
}  // namespace cascade::test
