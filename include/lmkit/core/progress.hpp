// A progress line for long work: how far, how fast, and how long still to go (the ETA is the
// remaining count at the rate since the start).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace lmkit {

class progress_meter {
 public:
  using clock = std::chrono::steady_clock;

  explicit progress_meter(std::uint64_t total, std::uint64_t start_at = 0)
      : total_(total), start_at_(start_at), start_(clock::now()) {}

  double elapsed_seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

  /// Seconds left at the average rate of the work done in this meter's life so far.
  double eta_seconds(std::uint64_t done) const {
    const std::uint64_t here = done > start_at_ ? done - start_at_ : 0;
    if (here == 0 || done >= total_) return 0.0;
    return elapsed_seconds() / static_cast<double>(here) * static_cast<double>(total_ - done);
  }

  /// "1m05s", "2h03m", "42s"
  static std::string format_duration(double seconds) {
    char buf[32];
    const auto s = static_cast<std::uint64_t>(seconds + 0.5);
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                    static_cast<unsigned long long>(s / 60 % 60));
    else if (s >= 60)
      std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                    static_cast<unsigned long long>(s % 60));
    else
      std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(s));
    return buf;
  }

  /// "step 120/2000 (6.0%) ... | ETA 1m30s": the caller's details in the middle.
  std::string line(std::uint64_t done, const std::string& details) const {
    char head[96];
    std::snprintf(head, sizeof head, "%llu/%llu (%.1f%%)", static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(total_), total_ ? 100.0 * done / total_ : 100.0);
    return std::string(head) + (details.empty() ? "" : " | " + details) + " | ETA " + format_duration(eta_seconds(done));
  }

 private:
  std::uint64_t total_, start_at_;
  clock::time_point start_;
};

}  // namespace lmkit
