// The record of a training run: loss per step, validation loss where it was measured, learning
// rate; written as CSV (for tools) and SVG (for people).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/io/svg_plot.hpp"

namespace lmkit::train {

struct loss_point {
  std::uint64_t step = 0;
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // NaN where not measured
  double lr = 0.0;
};

class loss_curve {
 public:
  void add(const loss_point& p) { points_.push_back(p); }
  const std::vector<loss_point>& points() const { return points_; }

  std::string csv() const {
    std::string out = "step,train_loss,val_loss,lr\n";
    char line[128];
    for (const loss_point& p : points_) {
      std::snprintf(line, sizeof line, "%llu,%.6f,%s,%.6g\n", static_cast<unsigned long long>(p.step), p.train_loss,
                    std::isnan(p.val_loss) ? "" : std::to_string(p.val_loss).c_str(), p.lr);
      out += line;
    }
    return out;
  }

  void write_csv(const std::filesystem::path& path) const { write_file_atomically(path, std::string_view(csv())); }

  void write_svg(const std::filesystem::path& path, const std::string& title) const {
    io::plot_series train{"train (per step)", {}}, val{"validation", {}};
    for (const loss_point& p : points_) {
      if (!std::isnan(p.train_loss)) train.points.emplace_back(static_cast<double>(p.step), p.train_loss);
      if (!std::isnan(p.val_loss)) val.points.emplace_back(static_cast<double>(p.step), p.val_loss);
    }
    io::write_line_chart_svg(path, {train, val}, {.title = title, .x_label = "step", .y_label = "loss (nats/token)"});
  }

 private:
  std::vector<loss_point> points_;
};

}  // namespace lmkit::train
