// What the fuzz targets share. Readers that take a path get the input through one memfd per process
// (an anonymous in-memory file, opened as /proc/self/fd/N): no disk traffic and nothing to clean
// up, and the reader runs exactly as it does on a user's file (open, fstat, mmap, or ifstream).
// A cascade::Error is the expected answer to bad bytes; any other exception escaping a reader is a
// finding (the CLI would die with "terminate called"), so targets catch cascade::Error only, and
// check that its message is printable (see printable below).
#pragma once
#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

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

// For LLVMFuzzerInitialize of targets that run a model. Fuzzing wants many small runs: waking the
// OpenMP and OpenBLAS thread pools on each one, and waiting at their barriers for threads that a
// busy machine has descheduled, cost more than the work (2 runs/s instead of hundreds).
inline int single_threaded() {
  omp_set_num_threads(1);
  openblas_set_num_threads(1);
  return 0;
}

// What the CLI prints, in messages and in `cascade inspect --json`, must be valid UTF-8: nlohmann's
// dump() throws json::type_error on any other byte, and that escaped `cascade inspect` as
// "terminate called" when a tokenizer error quoted a file's bytes.
inline void printable(const nlohmann::json& j) { (void)j.dump(); }
inline void printable(const cascade::Error& e) { printable(nlohmann::json(e.what())); }

inline std::string_view as_text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

}  // namespace cascade::fuzz
