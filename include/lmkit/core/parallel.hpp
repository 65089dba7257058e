// The one door to threads: a pool with an explicit thread count (a oneTBB task_arena) and
// parallel loops over fixed chunks. Chunk boundaries depend only on the problem size and the grain
// the caller gives, never on the thread count, so every result is bit-identical for 1 or N threads.
#pragma once

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "lmkit/core/error.hpp"

namespace lmkit {

/// A set of worker threads of a fixed size. Cheap to pass by reference; make one and keep it.
class thread_pool {
 public:
  /// `threads` = 0 means all the cores oneTBB sees.
  explicit thread_pool(int threads = 0) {
    require<argument_error>(threads >= 0, "thread_pool: thread count must be >= 0, got ", threads);
    threads_ = threads == 0 ? std::max(1, tbb::info::default_concurrency()) : threads;
    if (threads_ > 1) arena_ = std::make_unique<tbb::task_arena>(threads_);
  }

  int threads() const { return threads_; }

  /// Runs `body(chunk_begin, chunk_end)` over [0, n) split into chunks of `grain` (the last one
  /// shorter). Work of at most one chunk runs serially in the calling thread: an empty oneTBB loop
  /// costs ~150 ns, so callers pick a grain worth at least a few microseconds.
  template <class Body>
  void for_each_chunk(std::size_t n, std::size_t grain, Body&& body) const {
    // The body goes through a type-erased reference so that oneTBB's loop templates are
    // instantiated once for the program, not once per lambda: that halves the kernels' compile time.
    using body_type = std::remove_reference_t<Body>;
    run_chunks(n, grain, chunk_body{const_cast<void*>(static_cast<const void*>(std::addressof(body))),
                                    [](void* self, std::size_t begin, std::size_t end) {
                                      (*static_cast<body_type*>(self))(begin, end);
                                    }});
  }

  /// Runs `body(i)` for every i in [0, n); each call is one task (for n coarse pieces of work).
  template <class Body>
  void for_each_index(std::size_t n, Body&& body) const {
    for_each_chunk(n, 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) body(i);
    });
  }

  /// A deterministic reduction: `chunk_value(begin, end)` on fixed chunks, then `combine` in
  /// chunk order on the calling thread. The same bits for any thread count.
  template <class T, class ChunkValue, class Combine>
  T reduce(std::size_t n, std::size_t grain, T init, ChunkValue&& chunk_value, Combine&& combine) const {
    if (n == 0) return init;
    grain = std::max<std::size_t>(grain, 1);
    const std::size_t chunks = (n + grain - 1) / grain;
    std::vector<T> partial(chunks, init);
    for_each_chunk(n, grain, [&](std::size_t begin, std::size_t end) { partial[begin / grain] = chunk_value(begin, end); });
    T result = init;
    for (const T& p : partial) result = combine(result, p);
    return result;
  }

 private:
  struct chunk_body {
    void* self;
    void (*call)(void*, std::size_t, std::size_t);
    void operator()(std::size_t begin, std::size_t end) const { call(self, begin, end); }
  };

  void run_chunks(std::size_t n, std::size_t grain, chunk_body body) const {
    if (n == 0) return;
    grain = std::max<std::size_t>(grain, 1);
    const std::size_t chunks = (n + grain - 1) / grain;
    if (chunks == 1 || threads_ == 1) {
      for (std::size_t c = 0; c < chunks; ++c) body(c * grain, std::min(n, (c + 1) * grain));
      return;
    }
    arena_->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<std::size_t>(0, chunks, 1),
          [&](const tbb::blocked_range<std::size_t>& range) {
            for (std::size_t c = range.begin(); c != range.end(); ++c) body(c * grain, std::min(n, (c + 1) * grain));
          },
          tbb::simple_partitioner{});
    });
  }

  int threads_ = 1;
  std::unique_ptr<tbb::task_arena> arena_;
};

/// A pool that runs everything in the calling thread.
inline const thread_pool& serial_pool() {
  static const thread_pool pool(1);
  return pool;
}

}  // namespace lmkit
