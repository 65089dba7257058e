// lmkit::error and its kinds. Every reader of outside data throws one of these with a message
// that names what was being read, where, and what was expected.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lmkit {

/// Base of every error lmkit throws on purpose. Catch this to catch them all.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Tensor shapes or extents that do not fit together.
class shape_error : public error {
 public:
  using error::error;
};

/// Bytes that do not follow the format they claim (a truncated model file, a malformed ARPA line).
class format_error : public error {
 public:
  using error::error;
};

/// The operating system refused: a file that cannot be opened, mapped, read or written.
class io_error : public error {
 public:
  using error::error;
};

/// A caller passed a value outside what the function accepts.
class argument_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Joins the pieces of a message with operator<< (g++ 12 has no <format>).
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

}  // namespace detail

/// Throws `Error` with the concatenated message unless `condition` holds.
template <class Error, class... Parts>
void require(bool condition, Parts&&... parts) {
  if (!condition) throw Error(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace lmkit
