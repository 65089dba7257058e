// Files lmkit writes (checkpoints, models, indexes) appear whole or not at all: the bytes go to a
// temporary file beside the target, are flushed to disk, and the temporary is renamed over it.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "lmkit/core/error.hpp"

namespace lmkit {

/// Writes through a temporary file and renames it over `target` on `commit()`; a writer destroyed
/// without commit (an exception on the way) removes the temporary and leaves `target` untouched.
class atomic_file_writer {
 public:
  explicit atomic_file_writer(std::filesystem::path target) : target_(std::move(target)) {
    temporary_ = target_;
    temporary_ += ".tmp-XXXXXX";
    std::string pattern = temporary_.string();
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0) fail("cannot create a temporary file for");
    temporary_ = pattern;
  }
  atomic_file_writer(const atomic_file_writer&) = delete;
  atomic_file_writer& operator=(const atomic_file_writer&) = delete;
  ~atomic_file_writer() {
    if (fd_ >= 0) {
      ::close(fd_);
      std::error_code ignored;
      std::filesystem::remove(temporary_, ignored);
    }
  }

  void write(std::span<const std::byte> bytes) {
    const std::byte* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("cannot write");
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void write(std::string_view text) { write(std::as_bytes(std::span<const char>(text.data(), text.size()))); }

  /// Flushes to disk and renames the temporary over the target.
  void commit() {
    ::fchmod(fd_, 0644);
    if (::fsync(fd_) != 0) fail("cannot flush");
    if (::close(fd_) != 0) {
      fd_ = -1;
      fail("cannot close");
    }
    fd_ = -1;
    if (std::rename(temporary_.c_str(), target_.c_str()) != 0) {
      const int saved = errno;
      std::error_code ignored;
      std::filesystem::remove(temporary_, ignored);
      errno = saved;
      fail("cannot rename the temporary file onto");
    }
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw io_error(detail::concat("atomic_file_writer: ", what, " ", target_.string(), ": ", std::strerror(errno)));
  }

  std::filesystem::path target_, temporary_;
  int fd_ = -1;
};

/// Writes `bytes` to `target` atomically.
inline void write_file_atomically(const std::filesystem::path& target, std::span<const std::byte> bytes) {
  atomic_file_writer writer(target);
  writer.write(bytes);
  writer.commit();
}

/// Writes `text` to `target` atomically.
inline void write_file_atomically(const std::filesystem::path& target, std::string_view text) {
  write_file_atomically(target, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace lmkit
