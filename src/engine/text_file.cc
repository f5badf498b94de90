#include "engine/text_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cascade::engine {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open text file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) fail(path, ": the text file is empty");
  return ss.str();
}

}  // namespace cascade::engine
