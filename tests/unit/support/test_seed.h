// The seed of a test that draws random inputs. Its default keeps the test deterministic; the
// environment variable CASCADE_TEST_SEED replaces it, so that a failure can be replayed (or other
// inputs tried). While a Seed lives, every failure message of the test names it and the command
// that replays it.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>

namespace cascade::test {

// CASCADE_TEST_SEED when set (a decimal number; anything else fails the test), else `dflt`.
uint64_t test_seed(uint64_t dflt);

class Seed {
 public:
  explicit Seed(uint64_t dflt);
  uint64_t value() const { return value_; }
  // A test's further seeds, which used to be fixed numbers: `other` by default, moved by the same
  // amount as the first one when CASCADE_TEST_SEED replaces it, so one number replays them all.
  uint64_t derived(uint64_t other) const { return other + (value_ - default_); }

 private:
  uint64_t default_, value_;
  ::testing::ScopedTrace trace_;
};

}  // namespace cascade::test
