#include "support/test_paths.h"

namespace cascade::test {

std::filesystem::path shared_file(const std::string& rel) {
  auto p = shared_dir() / rel;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

}  // namespace cascade::test
