// Line charts as self-contained SVG (loss curves, ROC curves): axes with round-number ticks, one
// polyline per series, a legend. No fonts or scripts from outside.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "lmkit/core/atomic_file.hpp"

namespace lmkit::io {

struct plot_series {
  std::string label;
  std::vector<std::pair<double, double>> points;
};

struct plot_options {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 720;
  int height = 420;
};

namespace detail {
inline std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}
/// Ticks at 1, 2 or 5 times a power of ten, about `count` of them across [lo, hi].
inline std::vector<double> nice_ticks(double lo, double hi, int count) {
  const double raw = (hi - lo) / std::max(count, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}
inline std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace detail

inline std::string line_chart_svg(const std::vector<plot_series>& series, const plot_options& o) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const plot_series& s : series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double left = 64, right = o.width - 16.0, top = 36, bottom = o.height - 48.0;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (right - left); };
  auto py = [&](double y) { return bottom - (y - y0) / (y1 - y0) * (bottom - top); };
  static constexpr const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(o.width) + "\" height=\"" +
                    std::to_string(o.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + detail::number(o.width / 2.0) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" +
         detail::escape_xml(o.title) + "</text>\n";
  for (double t : detail::nice_ticks(x0, x1, 8)) {
    svg += "<line x1=\"" + detail::number(px(t)) + "\" y1=\"" + detail::number(top) + "\" x2=\"" + detail::number(px(t)) +
           "\" y2=\"" + detail::number(bottom) + "\" stroke=\"#eee\"/>\n";
    svg += "<text x=\"" + detail::number(px(t)) + "\" y=\"" + detail::number(bottom + 16) +
           "\" text-anchor=\"middle\">" + detail::number(t) + "</text>\n";
  }
  for (double t : detail::nice_ticks(y0, y1, 6)) {
    svg += "<line x1=\"" + detail::number(left) + "\" y1=\"" + detail::number(py(t)) + "\" x2=\"" + detail::number(right) +
           "\" y2=\"" + detail::number(py(t)) + "\" stroke=\"#eee\"/>\n";
    svg += "<text x=\"" + detail::number(left - 6) + "\" y=\"" + detail::number(py(t) + 4) + "\" text-anchor=\"end\">" +
           detail::number(t) + "</text>\n";
  }
  svg += "<rect x=\"" + detail::number(left) + "\" y=\"" + detail::number(top) + "\" width=\"" +
         detail::number(right - left) + "\" height=\"" + detail::number(bottom - top) +
         "\" fill=\"none\" stroke=\"#444\"/>\n";
  svg += "<text x=\"" + detail::number((left + right) / 2) + "\" y=\"" + detail::number(o.height - 10.0) +
         "\" text-anchor=\"middle\">" + detail::escape_xml(o.x_label) + "</text>\n";
  svg += "<text transform=\"translate(16," + detail::number((top + bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + detail::escape_xml(o.y_label) + "</text>\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* colour = colours[i % std::size(colours)];
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"1.5\" points=\"";
    for (auto [x, y] : series[i].points)
      if (std::isfinite(x) && std::isfinite(y)) svg += detail::number(px(x)) + "," + detail::number(py(y)) + " ";
    svg += "\"/>\n";
    const double ly = top + 16 + 16.0 * static_cast<double>(i);
    svg += "<line x1=\"" + detail::number(right - 150) + "\" y1=\"" + detail::number(ly - 4) + "\" x2=\"" +
           detail::number(right - 130) + "\" y2=\"" + detail::number(ly - 4) + "\" stroke=\"" + colour +
           "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + detail::number(right - 124) + "\" y=\"" + detail::number(ly) + "\">" +
           detail::escape_xml(series[i].label) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

inline void write_line_chart_svg(const std::filesystem::path& path, const std::vector<plot_series>& series,
                                 const plot_options& options) {
  write_file_atomically(path, std::string_view(line_chart_svg(series, options)));
}

}  // namespace lmkit::io
