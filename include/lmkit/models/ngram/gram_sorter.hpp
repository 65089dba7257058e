// External sorting of n-gram records for estimation within a memory budget (as lmplz -S): records
// (n word ids and two numbers) gather in a buffer of bounded size; a full buffer is sorted, equal
// n-grams combined, and written to a temporary file as a run; reading merges the runs. Two orders:
// by the words from the first (the ARPA order, contexts together) and from the last (suffix order:
// the n-grams that share their last n - 1 words together).
#pragma once

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lmkit/core/error.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"
#include "lmkit/models/ngram/vocabulary.hpp"

namespace lmkit::ngram {

/// One n-gram with two numbers (a count, a probability, a weight: whatever the stage carries).
struct gram_record {
  std::array<word_id, max_order> words{};
  double a = 0, b = 0;
};

enum class gram_order { prefix, suffix };

/// -1, 0 or 1 as the first n words of x sort before, with or after y's.
inline int compare_grams(const word_id* x, const word_id* y, std::size_t n, gram_order order) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = order == gram_order::prefix ? i : n - 1 - i;
    if (x[k] != y[k]) return x[k] < y[k] ? -1 : 1;
  }
  return 0;
}

namespace gram_sorter_detail {

/// A file that exists only while open: created in `folder` and unlinked at once, so that it goes
/// away however the process ends.
class scratch_file {
 public:
  explicit scratch_file(const std::filesystem::path& folder) {
    std::string pattern = (folder / "lmkit-ngram-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    require<io_error>(fd >= 0, "ngram: cannot create a temporary file in ", folder.string());
    ::unlink(pattern.c_str());
    file_ = ::fdopen(fd, "w+b");
    if (!file_) {
      ::close(fd);
      throw io_error(lmkit::detail::concat("ngram: cannot open a temporary file in ", folder.string()));
    }
  }
  scratch_file(const scratch_file&) = delete;
  scratch_file& operator=(const scratch_file&) = delete;
  ~scratch_file() { std::fclose(file_); }

  void write(const void* data, std::size_t bytes) {
    require<io_error>(std::fwrite(data, 1, bytes, file_) == bytes, "ngram: cannot write a temporary file (disk full?)");
  }
  void rewind() {
    require<io_error>(std::fflush(file_) == 0 && std::fseek(file_, 0, SEEK_SET) == 0, "ngram: cannot reread a temporary file");
  }
  std::size_t read(void* data, std::size_t bytes) { return std::fread(data, 1, bytes, file_); }

 private:
  std::FILE* file_ = nullptr;
};

/// An anonymous mapping of n elements: pages cost memory only once touched, and go back to the
/// system when it is released (the allocator would keep buffers of a few megabytes for reuse and
/// let the process outgrow its budget).
template <class T>
class pages {
 public:
  pages() = default;
  explicit pages(std::size_t n) : size_(n) {
    if (n == 0) return;
    void* p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    require<io_error>(p != MAP_FAILED, "ngram: cannot map ", n * sizeof(T), " bytes for sorting");
    data_ = static_cast<T*>(p);
  }
  pages(pages&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  pages& operator=(pages&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~pages() {
    if (data_) ::munmap(data_, size_ * sizeof(T));
  }
  T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace gram_sorter_detail

/// Sorts n-gram records of one order within `budget_bytes`, combining equal n-grams (their `a`
/// summed; `b` kept from one of them) when `combine` is set. add() all records, then next() reads them
/// back in order.
class gram_sorter {
 public:
  gram_sorter(std::size_t n, gram_order order, std::size_t budget_bytes, std::filesystem::path folder, bool combine)
      : n_(n), order_(order), bytes_(n * sizeof(word_id) + 2 * sizeof(double)), units_(bytes_ / sizeof(word_id)),
        folder_(std::move(folder)),
        combine_(combine) {
    require<argument_error>(n >= 1 && n <= max_order, "gram_sorter: order ", n, " outside 1 to ", max_order);
    capacity_ = std::max<std::size_t>(budget_bytes / (bytes_ + sizeof(std::uint32_t)), 16);
  }

  gram_sorter(const gram_sorter&) = delete;  // the heap's comparator points at this object
  gram_sorter& operator=(const gram_sorter&) = delete;

  std::size_t order() const { return n_; }

  /// Writes what the buffer holds as a run and frees the buffer: for a sorter that has all its
  /// records but will be read later, so that it holds no memory meanwhile.
  void seal() {
    spill();
    buffer_ = {};
  }

  void add(const word_id* words, double a, double b = 0) {
    require<argument_error>(!merging_, "gram_sorter: add after reading began");
    if (!buffer_.data()) buffer_ = gram_sorter_detail::pages<word_id>(capacity_ * units_);
    const std::size_t at = used_;
    used_ += units_;
    std::memcpy(buffer_.data() + at, words, n_ * sizeof(word_id));
    std::memcpy(buffer_.data() + at + n_, &a, sizeof a);
    std::memcpy(buffer_.data() + at + n_ + 2, &b, sizeof b);
    if (used_ / units_ >= capacity_) spill();
  }
  void add(const gram_record& r) { add(r.words.data(), r.a, r.b); }

  /// The next record in order (equal n-grams combined), or false at the end.
  bool next(gram_record& out) {
    if (!merging_) start_merge();
    if (heap_.empty()) return false;
    out = pop();
    if (combine_)
      while (!heap_.empty() && compare_grams(heap_.top().record.words.data(), out.words.data(), n_, order_) == 0)
        out.a += pop().a;
    return true;
  }

  /// Runs written so far (a measure of how the budget was used).
  std::size_t runs() const { return runs_.size(); }

 private:
  struct run {
    gram_sorter_detail::scratch_file file;
    gram_sorter_detail::pages<unsigned char> block;
    std::size_t records = 0, filled = 0, at = 0;
    explicit run(const std::filesystem::path& folder) : file(folder) {}
  };
  struct head {
    gram_record record;
    std::size_t run;
  };

  void decode(const unsigned char* p, gram_record& r) const {
    r.words.fill(0);
    std::memcpy(r.words.data(), p, n_ * sizeof(word_id));
    std::memcpy(&r.a, p + n_ * sizeof(word_id), sizeof r.a);
    std::memcpy(&r.b, p + n_ * sizeof(word_id) + sizeof r.a, sizeof r.b);
  }

  void spill() {
    const std::size_t count = used_ / units_;
    if (count == 0) return;
    std::vector<std::uint32_t> rows(count);
    for (std::size_t i = 0; i < count; ++i) rows[i] = static_cast<std::uint32_t>(i);
    const word_id* base = buffer_.data();
    // Equal n-grams are combined (combine) or never added twice (the stages that do not combine
    // add each n-gram once), so an unstable sort gives the same runs.
    std::sort(rows.begin(), rows.end(), [&](std::uint32_t x, std::uint32_t y) {
      return compare_grams(base + std::size_t{x} * units_, base + std::size_t{y} * units_, n_, order_) < 0;
    });
    auto& r = runs_.emplace_back(std::make_unique<run>(folder_));
    std::vector<unsigned char> out;
    out.reserve(std::min<std::size_t>(count, 4096) * bytes_);
    gram_record current, next;
    bool have = false;
    auto flush_record = [&](const gram_record& rec) {
      const std::size_t at = out.size();
      out.resize(at + bytes_);
      std::memcpy(out.data() + at, rec.words.data(), n_ * sizeof(word_id));
      std::memcpy(out.data() + at + n_ * sizeof(word_id), &rec.a, sizeof rec.a);
      std::memcpy(out.data() + at + n_ * sizeof(word_id) + sizeof rec.a, &rec.b, sizeof rec.b);
      if (out.size() >= (std::size_t{1} << 20)) {
        r->file.write(out.data(), out.size());
        out.clear();
      }
    };
    for (const std::uint32_t i : rows) {
      decode(reinterpret_cast<const unsigned char*>(base + std::size_t{i} * units_), next);
      if (have && combine_ && compare_grams(current.words.data(), next.words.data(), n_, order_) == 0) {
        current.a += next.a;
        continue;
      }
      if (have) flush_record(current), ++r->records;
      current = next;
      have = true;
    }
    if (have) flush_record(current), ++r->records;
    r->file.write(out.data(), out.size());
    r->file.rewind();
    used_ = 0;
  }

  bool refill(run& r) {
    if (r.at < r.filled) return true;
    r.filled = r.file.read(r.block.data(), r.block.size());
    r.at = 0;
    require<io_error>(r.filled % bytes_ == 0, "ngram: a temporary file ends inside a record");
    return r.filled > 0;
  }

  void start_merge() {
    spill();
    buffer_ = {};
    merging_ = true;
    // The budget's buffer is shared by the runs' read blocks, of at most 4 MiB (larger reads gain
    // nothing) and no more than the run.
    const std::size_t per_run = std::clamp<std::size_t>(capacity_ / std::max<std::size_t>(runs_.size(), 1), 64,
                                                        std::max<std::size_t>((std::size_t{4} << 20) / bytes_, 64));
    for (std::size_t i = 0; i < runs_.size(); ++i) {
      runs_[i]->block = gram_sorter_detail::pages<unsigned char>(std::min(per_run, runs_[i]->records) * bytes_);
      push_from(i);
    }
  }

  void push_from(std::size_t i) {
    run& r = *runs_[i];
    if (!refill(r)) return;
    head h;
    decode(r.block.data() + r.at, h.record);
    h.run = i;
    r.at += bytes_;
    heap_.push(h);
  }

  gram_record pop() {
    const head h = heap_.top();
    heap_.pop();
    push_from(h.run);
    return h.record;
  }

  struct later {
    const gram_sorter* self;
    bool operator()(const head& x, const head& y) const {
      const int c = compare_grams(x.record.words.data(), y.record.words.data(), self->n_, self->order_);
      return c != 0 ? c > 0 : x.run > y.run;  // equal n-grams: the earlier run first
    }
  };

  std::size_t n_;
  gram_order order_;
  std::size_t bytes_, units_;  // a record's size in bytes, in word ids
  std::filesystem::path folder_;
  bool combine_;
  std::size_t capacity_ = 0;
  gram_sorter_detail::pages<word_id> buffer_;  // records: n word ids, then two doubles in four ids' room
  std::size_t used_ = 0;                       // word ids of buffer_ in use
  std::vector<std::unique_ptr<run>> runs_;
  bool merging_ = false;
  std::priority_queue<head, std::vector<head>, later> heap_{later{this}};
};

}  // namespace lmkit::ngram
