// read_json_file: nlohmann's parse error text (line, column, what was expected) is kept in the
// message because it is what a user needs to fix a hand-edited config. Every json::exception is
// caught, not only parse_error: a number too large for a double ("1e400") is an out_of_range.
#include "io/json_file.h"

#include <fstream>

#include "core/error.h"

namespace cascade {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": malformed JSON: ", e.what());
  }
  if (!j.is_object()) fail(path.string(), ": expected a JSON object at the top level");
  return j;
}

}  // namespace cascade
