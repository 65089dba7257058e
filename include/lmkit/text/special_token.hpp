// A special token: text such as "<|endoftext|>", "<s>" or "<unk>" that stands for one id of its own
// rather than for the bytes of its text.
#pragma once

#include <string>

#include "lmkit/text/token_bytes_table.hpp"

namespace lmkit::text {

struct special_token {
  std::string text;
  token_id id;
  bool operator==(const special_token&) const = default;
};

}  // namespace lmkit::text
