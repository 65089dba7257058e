// The lines of a text file held in memory: LF or CRLF endings, numbered from 1 for messages.
#pragma once

#include <cstddef>
#include <string_view>

namespace lmkit::io {

/// Calls `f(line, line_number)` for each line of `content`, without its "\n" or "\r\n".
template <class F>
void for_each_line(std::string_view content, F&& f) {
  std::size_t line_number = 0;
  for (std::size_t pos = 0; pos < content.size();) {
    std::size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    f(line, ++line_number);
  }
}

}  // namespace lmkit::io
