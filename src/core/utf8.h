// Bytes from files (GGUF strings, tokenizer pieces, a JSON parser's "last read") are not always
// UTF-8, but messages and `cascade inspect --json` must be: nlohmann's dump() throws json::type_error
// on an invalid byte, which escaped the CLI as std::terminate. escape_invalid_utf8 keeps every valid
// UTF-8 sequence (as nlohmann and RFC 3629 define it: no overlong forms, surrogates or code points
// beyond U+10FFFF) and writes each other byte as the four characters \xNN.
#pragma once
#include <string>
#include <string_view>

namespace cascade {

bool is_valid_utf8(std::string_view s);
std::string escape_invalid_utf8(std::string_view s);

}  // namespace cascade
