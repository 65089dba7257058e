// A read-only memory map of a whole file: model weights are used where they lie, never copied.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include "lmkit/core/error.hpp"

namespace lmkit {

class mapped_file {
 public:
  mapped_file() = default;

  explicit mapped_file(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open");
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail("cannot stat");
    }
    if (!S_ISREG(info.st_mode)) {
      ::close(fd);
      throw io_error(detail::concat("mapped_file: ", path_.string(), " is not a regular file"));
    }
    size_ = static_cast<std::size_t>(info.st_size);
    if (size_ > 0) {
      void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (address == MAP_FAILED) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        fail("cannot map");
      }
      data_ = static_cast<const std::byte*>(address);
    }
    ::close(fd);  // the mapping keeps the file alive
  }

  mapped_file(mapped_file&& other) noexcept
      : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  mapped_file& operator=(mapped_file&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

  /// The bytes [offset, offset + count), or format_error naming the file if they run past its end.
  std::span<const std::byte> subspan(std::size_t offset, std::size_t count) const {
    require<format_error>(offset <= size_ && count <= size_ - offset, path_.string(), ": ", count,
                          " bytes at offset ", offset, " run past the end of the file (", size_, " bytes)");
    return {data_ + offset, count};
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw io_error(detail::concat("mapped_file: ", what, " ", path_.string(), ": ", std::strerror(errno)));
  }
  void unmap() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lmkit
