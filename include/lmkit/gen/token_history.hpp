// The penalty window: the last `window` tokens of a generation's history (prompt included, most
// recent last), counted. The penalties read only these counts, so they cost O(window log window)
// per token, whatever the vocabulary.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"

namespace lmkit::gen {

/// A window that covers the whole history (llama.cpp's `--repeat-last-n -1`).
inline constexpr std::size_t whole_history = std::numeric_limits<std::size_t>::max();

/// The last `window` tokens of `history` (all of it if shorter).
inline std::span<const token_id> last_window(std::span<const token_id> history, std::size_t window) {
  return history.last(std::min(window, history.size()));
}

/// The distinct tokens of the last `window` tokens of `history`, ascending, into `ids`, with how
/// often each occurs into `counts`. Throws argument_error, naming the position in the history,
/// for a token outside a vocabulary of `vocabulary` tokens.
inline void count_window(std::span<const token_id> history, std::size_t window, std::size_t vocabulary,
                         std::vector<token_id>& ids, std::vector<std::uint32_t>& counts) {
  const std::span<const token_id> recent = last_window(history, window);
  const std::size_t first = history.size() - recent.size();
  ids.assign(recent.begin(), recent.end());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    require<argument_error>(ids[i] < vocabulary, "sample: history token ", ids[i], " at position ", first + i,
                            " is outside the vocabulary of ", vocabulary, " tokens");
  }
  std::sort(ids.begin(), ids.end());
  counts.clear();
  std::size_t unique = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (unique > 0 && ids[unique - 1] == ids[i]) {
      ++counts.back();
    } else {
      ids[unique++] = ids[i];
      counts.push_back(1);
    }
  }
  ids.resize(unique);
}

}  // namespace lmkit::gen
