// Writes safetensors files as the reference library (huggingface/safetensors) does: the header is
// compact JSON with "__metadata__" first, then the tensors ordered by dtype from the widest
// element to the narrowest (the library's order: U64, I64, F64, F32, U32, I32, BF16, F16, U16,
// I16, F8, I8, U8, BOOL) and by name within a dtype, each entry as {"dtype", "shape",
// "data_offsets"}; the data follows in the same order, without gaps; the header is padded with
// spaces to a multiple of 8 bytes. Data starting 8-byte aligned and widest elements first make
// every tensor aligned to its element. A model of one dtype is simply sorted by name.
// The file is written atomically. The writer keeps a copy of each tensor's bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/io/safetensors.hpp"

namespace lmkit::io {

class safetensors_writer {
 public:
  /// A tensor of `dtype` and `shape` (outermost first; {} for a scalar) whose row-major,
  /// little-endian bytes are `bytes`. A name given twice, "__metadata__", or bytes that do not
  /// fit the shape are an argument_error.
  void add(std::string name, safetensors_dtype dtype, std::vector<std::uint64_t> shape, std::span<const std::byte> bytes) {
    require<argument_error>(name != "__metadata__", "safetensors_writer: \"__metadata__\" cannot name a tensor");
    require_utf8(name, "tensor name");
    require<argument_error>(!names_.contains(name), "safetensors_writer: tensor ", name, " is added twice");
    std::uint64_t expected = element_size(dtype);
    for (const auto d : shape) {
      require<argument_error>(d == 0 || expected <= std::numeric_limits<std::uint64_t>::max() / d,
                              "safetensors_writer: tensor ", name, ": the shape's size overflows");
      expected *= d;
    }
    require<argument_error>(expected == bytes.size(), "safetensors_writer: tensor ", name, ": ", bytes.size(),
                            " bytes, but its shape of ", name_of(dtype), " needs ", expected);
    names_.insert(name);
    tensors_.push_back({std::move(name), dtype, std::move(shape), std::vector<std::byte>(bytes.begin(), bytes.end())});
  }
  /// An F32 tensor.
  void add(std::string name, std::vector<std::uint64_t> shape, std::span<const float> values) {
    add(std::move(name), safetensors_dtype::f32, std::move(shape), std::as_bytes(values));
  }

  /// A "__metadata__" entry; a key given twice is an argument_error.
  void add_metadata(std::string key, std::string value) {
    require_utf8(key, "metadata key");
    require_utf8(value, "metadata value");
    require<argument_error>(!metadata_.contains(key), "safetensors_writer: metadata key ", key, " is added twice");
    metadata_.emplace(std::move(key), std::move(value));
  }

  /// The JSON header, padded with spaces to a multiple of 8 bytes.
  std::string header() const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    if (!metadata_.empty()) j["__metadata__"] = metadata_;
    std::uint64_t offset = 0;
    for (const auto* t : in_file_order()) {
      nlohmann::ordered_json entry = nlohmann::ordered_json::object();
      entry["dtype"] = std::string(name_of(t->dtype));
      entry["shape"] = t->shape;
      entry["data_offsets"] = {offset, offset + t->data.size()};
      offset += t->data.size();
      j[t->name] = std::move(entry);
    }
    std::string text = j.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  }

  /// The whole file, in memory (tests, seeds).
  std::string bytes() const {
    std::string out;
    for_each_piece([&](std::span<const std::byte> piece) { out.append(reinterpret_cast<const char*>(piece.data()), piece.size()); });
    return out;
  }

  /// Writes the file atomically (a temporary beside `path`, flushed, renamed over it).
  void write(const std::filesystem::path& path) const {
    atomic_file_writer out(path);
    for_each_piece([&](std::span<const std::byte> piece) { out.write(piece); });
    out.commit();
  }

 private:
  struct tensor {
    std::string name;
    safetensors_dtype dtype;
    std::vector<std::uint64_t> shape;
    std::vector<std::byte> data;
  };

  static void require_utf8(const std::string& text, const char* what) {
    try {
      (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::exception&) {
      throw argument_error(lmkit::detail::concat("safetensors_writer: ", what, " ", text, " is not valid UTF-8"));
    }
  }

  std::vector<const tensor*> in_file_order() const {
    std::vector<const tensor*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const tensor* a, const tensor* b) {
      return a->dtype != b->dtype ? a->dtype > b->dtype : a->name < b->name;
    });
    return order;
  }

  /// The length, the header, then each tensor's bytes.
  template <class Sink>
  void for_each_piece(Sink&& sink) const {
    const std::string text = header();
    std::byte length[8];
    for (int i = 0; i < 8; ++i) length[i] = std::byte(std::uint64_t(text.size()) >> (8 * i) & 0xff);
    sink(std::span<const std::byte>(length));
    sink(std::as_bytes(std::span<const char>(text.data(), text.size())));
    for (const auto* t : in_file_order()) sink(std::span<const std::byte>(t->data));
  }

  std::map<std::string, std::string> metadata_;
  std::vector<tensor> tensors_;
  std::set<std::string, std::less<>> names_;
};

}  // namespace lmkit::io
