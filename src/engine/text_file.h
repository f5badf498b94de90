// The text a perplexity run or a study reads: a whole file, byte for byte (text that is not UTF-8
// is read byte-wise by the tokenizers).
#pragma once
#include <string>

namespace cascade::engine {

// cascade::Error naming the file when it cannot be read or is empty.
std::string read_text_file(const std::string& path);

}  // namespace cascade::engine
