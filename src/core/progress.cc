#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cascade {

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(2)), start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t done, const std::string& note) {
  if (!enabled_ || total_ <= 0) return;
  const double frac = double(done) / double(total_);
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = done > 0 ? el * (double(total_ - done) / double(done)) : 0;
  if (tty_) {
    const int width = 30, fill = int(frac * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld %.0fs left %s\033[K", label_.c_str(), fill,
                 "##############################", width - fill, "", (long long)done, (long long)total_, eta, note.c_str());
    std::fflush(stderr);
  } else {
    const int decile = int(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %lld/%lld (%.0f%%), %.1fs elapsed %s\n", label_.c_str(), (long long)done,
                 (long long)total_, 100 * frac, el, note.c_str());
  }
}

void Progress::finish(const std::string& note) {
  if (!enabled_) return;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s: done in %.1fs %s\n", label_.c_str(), el, note.c_str());
}

}  // namespace cascade
