// repeat<N, Block>: N blocks of the same type one after another (a transformer's layers). N may be
// `dynamic` (the count comes from a config file); blocks are named "0" .. "N-1".
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/nn/sequential.hpp"

namespace lmkit::nn {

template <std::size_t N, class Block>
class repeat {
  static_assert(detail::check_part<Block>());
  static_assert(detail::widths_agree(Block::in_width, Block::out_width),
                "nn::repeat: a repeated block must give back as many features as it takes");
  using storage = std::conditional_t<N == dynamic, std::vector<Block>, std::array<Block, N == dynamic ? 0 : N>>;

 public:
  static constexpr std::size_t in_width = Block::in_width;
  static constexpr std::size_t out_width = Block::out_width;

  repeat() requires(N != dynamic && std::is_default_constructible_v<Block>) = default;
  /// Blocks made by make_block(i), i = 0 .. count-1.
  template <class MakeBlock>
  repeat(std::size_t count, MakeBlock&& make_block) : blocks_(make(count, make_block)) {}

  std::size_t size() const { return blocks_.size(); }
  Block& operator[](std::size_t i) { return blocks_[i]; }
  const Block& operator[](std::size_t i) const { return blocks_[i]; }
  auto begin() { return blocks_.begin(); }
  auto end() { return blocks_.end(); }
  std::size_t in_features() const { return blocks_.front().in_features(); }
  std::size_t out_features() const { return blocks_.back().out_features(); }

  void reserve(activation_arena& arena, batch_shape shape) {
    for (Block& b : blocks_) b.reserve(arena, shape);
  }
  const_matrix forward(const_matrix x, const run_context& ctx) {
    for (Block& b : blocks_) x = b.forward(x, ctx);
    return x;
  }
  const_matrix backward(const_matrix dy, const run_context& ctx) {
    for (std::size_t i = blocks_.size(); i-- > 0;) dy = blocks_[i].backward(dy, ctx);
    return dy;
  }
  template <class Visitor>
  void visit_parameters(Visitor&& visit, std::string_view prefix) {
    for (std::size_t i = 0; i < blocks_.size(); ++i) blocks_[i].visit_parameters(visit, join_name(prefix, std::to_string(i)));
  }

 private:
  template <class MakeBlock>
  static storage make(std::size_t count, MakeBlock& make_block) {
    require<argument_error>(count > 0, "nn::repeat needs at least one block");
    if constexpr (N == dynamic) {
      std::vector<Block> blocks;
      blocks.reserve(count);
      for (std::size_t i = 0; i < count; ++i) blocks.push_back(make_block(i));
      return blocks;
    } else {
      require<shape_error>(count == N, "nn::repeat: ", count, " blocks given to a repeat of ", N);
      return [&]<std::size_t... I>(std::index_sequence<I...>) { return storage{make_block(I)...}; }(std::make_index_sequence<N>{});
    }
  }

  storage blocks_;
};

}  // namespace lmkit::nn
