#include "support/test_seed.h"

#include <cstdlib>
#include <string>

namespace cascade::test {

uint64_t test_seed(uint64_t dflt) {
  const char* env = std::getenv("CASCADE_TEST_SEED");
  if (!env || !*env) return dflt;
  char* end = nullptr;
  const uint64_t v = std::strtoull(env, &end, 10);
  if (*end != '\0' || env[0] == '-') {
    ADD_FAILURE() << "CASCADE_TEST_SEED='" << env << "' is not a decimal number; using the default seed " << dflt;
    return dflt;
  }
  return v;
}

Seed::Seed(uint64_t dflt)
    : default_(dflt),
      value_(test_seed(dflt)),
      trace_(__FILE__, __LINE__,
             "random inputs from seed " + std::to_string(value_) + "; replay with CASCADE_TEST_SEED=" + std::to_string(value_)) {}

}  // namespace cascade::test
