// Progress on stderr for long runs: a redrawn bar on a terminal, a line every ~10% otherwise (logs).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace cascade {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  void update(int64_t done, const std::string& note = "");
  void finish(const std::string& note = "");

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cascade
