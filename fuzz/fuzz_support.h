// What the fuzz targets share. Readers that take a path get the input through one memfd per process
// (an anonymous in-memory file, opened as /proc/self/fd/N): no disk traffic and nothing to clean
// up, and the reader runs exactly as it does on a user's file (open, fstat, mmap, or ifstream).
// A cascade::Error is the expected answer to bad bytes; any other exception escaping a reader is a
// finding (the CLI would die with "terminate called"), so targets catch cascade::Error only.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace cascade::fuzz {

// Replaces the in-memory file's contents with data and returns a path that opens it.
inline std::string memory_file(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("cascade-fuzz", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != ssize_t(size))) std::abort();
  return "/proc/self/fd/" + std::to_string(fd);
}

// A property of the code under test failed: crash so that libFuzzer saves the input.
inline void require(bool ok) {
  if (!ok) std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

}  // namespace cascade::fuzz
