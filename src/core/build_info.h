// What a binary knows about its own build, for the reports it writes and `cascade --version`.
#pragma once
#include <string>

namespace cascade {

// The commit the engine was built from (`git describe --always --dirty` of its source tree at build
// time, "unknown" outside a git checkout): reports name it, wherever the binary has been carried.
std::string build_commit();

}  // namespace cascade
