// Errors. Every problem with what a user gave us (a file, an option, a token id) is a cascade::Error:
// the CLI prints its message and exits with code 2. Anything else escaping is a bug in the engine.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/utf8.h"

namespace cascade {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds a message from any streamable parts: fail("file ", path, ": header is ", n, " bytes").
// Parts often quote bytes of the file at fault; any byte that is not valid UTF-8 is written as \xNN,
// so that a message can always be printed and put into JSON (`cascade inspect --json`).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(escape_invalid_utf8(os.str()));
}

// Checks an input condition; on failure throws cascade::Error with the streamed message.
#define CASCADE_CHECK(cond, ...)          \
  do {                                    \
    if (!(cond)) ::cascade::fail(__VA_ARGS__); \
  } while (0)

}  // namespace cascade
