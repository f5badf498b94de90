// Wall-clock stamps for reports.
#pragma once
#include <string>

namespace cascade {

// "YYYY-MM-DD HH:MM UTC" of now.
std::string utc_now();

}  // namespace cascade
