// Errors. Every problem with what a user gave us (a file, an option, a token id) is a cascade::Error:
// the CLI prints its message and exits with code 2. Anything else escaping is a bug in the engine.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace cascade {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds a message from any streamable parts: fail("file ", path, ": header is ", n, " bytes").
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

// Checks an input condition; on failure throws cascade::Error with the streamed message.
#define CASCADE_CHECK(cond, ...)          \
  do {                                    \
    if (!(cond)) ::cascade::fail(__VA_ARGS__); \
  } while (0)

}  // namespace cascade
