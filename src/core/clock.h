// Wall-clock stamps for reports, and the steady clock that phase timings read.
#pragma once
#include <chrono>
#include <string>

namespace cascade {

// "YYYY-MM-DD HH:MM UTC" of now.
std::string utc_now();

// Seconds of the steady clock since t0.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace cascade
