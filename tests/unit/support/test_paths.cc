#include "support/test_paths.h"

#include <fstream>
#include <sstream>

namespace cascade::test {

std::filesystem::path shared_file(const std::string& rel) {
  auto p = shared_dir() / rel;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

std::filesystem::path scratch_path(const std::string& suite, const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / suite / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d.parent_path());
  return d;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace cascade::test
