// Writes GGUF version 3: metadata in the order given, tensor descriptions, then each tensor's
// bytes at an offset aligned to general.alignment (32 unless set). Written atomically.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/io/gguf.hpp"

namespace lmkit::io {

class gguf_writer {
 public:
  void add(std::string_view key, const gguf_value& value) {
    put_string(metadata_, key);
    put(metadata_, std::uint32_t(value.type));
    put_value(value);
    ++metadata_count_;
    if (key == "general.alignment") {
      const auto* a = std::get_if<std::uint64_t>(&value.value);
      require<argument_error>(a && *a > 0 && (*a & (*a - 1)) == 0, "general.alignment must be a power of two");
      alignment_ = *a;
    }
  }
  void add_string(std::string_view key, std::string value) { add(key, {gguf_type::string, std::move(value)}); }
  void add_uint32(std::string_view key, std::uint32_t value) { add(key, {gguf_type::uint32, std::uint64_t(value)}); }
  void add_float32(std::string_view key, float value) { add(key, {gguf_type::float32, double(value)}); }
  void add_bool(std::string_view key, bool value) { add(key, {gguf_type::boolean, value}); }
  void add_strings(std::string_view key, const std::vector<std::string>& values) {
    auto array = std::make_shared<gguf_array>(gguf_array{gguf_type::string, {}});
    for (const auto& v : values) array->items.push_back({gguf_type::string, v});
    add(key, {gguf_type::array, std::move(array)});
  }
  template <class Number>
  void add_numbers(std::string_view key, gguf_type element, const std::vector<Number>& values) {
    auto array = std::make_shared<gguf_array>(gguf_array{element, {}});
    for (const auto v : values) {
      if (element == gguf_type::float32 || element == gguf_type::float64)
        array->items.push_back({element, double(v)});
      else if (element == gguf_type::int8 || element == gguf_type::int16 || element == gguf_type::int32 || element == gguf_type::int64)
        array->items.push_back({element, std::int64_t(v)});
      else
        array->items.push_back({element, std::uint64_t(v)});
    }
    add(key, {gguf_type::array, std::move(array)});
  }

  /// A tensor: `dims` in ggml order (dims[0] is a row's length), `bytes` its data in `type`'s layout.
  void add_tensor(std::string name, std::vector<std::uint64_t> dims, ggml_type type, std::span<const std::byte> bytes) {
    std::uint64_t elements = 1;
    for (const auto d : dims) elements *= d;
    const auto [per_block, block_bytes] = ggml_block(type);
    require<argument_error>(per_block != 0 && !dims.empty() && dims.size() <= 4 && dims[0] % per_block == 0 &&
                                elements / per_block * block_bytes == bytes.size(),
                            "tensor ", name, ": ", bytes.size(), " bytes do not fit its type and dimensions");
    tensors_.push_back({std::move(name), std::move(dims), type, std::vector<std::byte>(bytes.begin(), bytes.end())});
  }

  void write(const std::filesystem::path& path) const {
    std::string out = "GGUF";
    put(out, std::uint32_t(3));
    put(out, std::uint64_t(tensors_.size()));
    put(out, metadata_count_);
    out += metadata_;
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put(out, std::uint32_t(t.dims.size()));
      for (const auto d : t.dims) put(out, d);
      put(out, std::uint32_t(t.type));
      put(out, offset);
      offsets.push_back(offset);
      offset = align(offset + t.data.size());
    }
    out.resize(align(out.size()), '\0');
    const std::size_t data_start = out.size();
    for (std::size_t k = 0; k < tensors_.size(); ++k) {
      out.resize(data_start + offsets[k], '\0');
      out.append(reinterpret_cast<const char*>(tensors_[k].data.data()), tensors_[k].data.size());
    }
    write_file_atomically(path, out);
  }

 private:
  struct tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    ggml_type type;
    std::vector<std::byte> data;
  };

  std::uint64_t align(std::uint64_t n) const { return (n + alignment_ - 1) / alignment_ * alignment_; }
  template <class T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void put_string(std::string& out, std::string_view s) {
    put(out, std::uint64_t(s.size()));
    out += s;
  }
  void put_value(const gguf_value& v) { put_value_to(metadata_, v); }
  static void put_value_to(std::string& out, const gguf_value& v) {
    switch (v.type) {
      case gguf_type::uint8: put(out, std::uint8_t(std::get<std::uint64_t>(v.value))); break;
      case gguf_type::uint16: put(out, std::uint16_t(std::get<std::uint64_t>(v.value))); break;
      case gguf_type::uint32: put(out, std::uint32_t(std::get<std::uint64_t>(v.value))); break;
      case gguf_type::uint64: put(out, std::get<std::uint64_t>(v.value)); break;
      case gguf_type::int8: put(out, std::int8_t(std::get<std::int64_t>(v.value))); break;
      case gguf_type::int16: put(out, std::int16_t(std::get<std::int64_t>(v.value))); break;
      case gguf_type::int32: put(out, std::int32_t(std::get<std::int64_t>(v.value))); break;
      case gguf_type::int64: put(out, std::get<std::int64_t>(v.value)); break;
      case gguf_type::float32: put(out, float(std::get<double>(v.value))); break;
      case gguf_type::float64: put(out, std::get<double>(v.value)); break;
      case gguf_type::boolean: put(out, std::uint8_t(std::get<bool>(v.value) ? 1 : 0)); break;
      case gguf_type::string: put_string(out, std::get<std::string>(v.value)); break;
      case gguf_type::array: {
        const auto& a = *std::get<std::shared_ptr<gguf_array>>(v.value);
        put(out, std::uint32_t(a.element_type));
        put(out, std::uint64_t(a.items.size()));
        for (const auto& item : a.items) {
          require<argument_error>(item.type == a.element_type, "GGUF array items must all have the array's type");
          put_value_to(out, item);
        }
        break;
      }
    }
  }

  std::string metadata_;
  std::uint64_t metadata_count_ = 0;
  std::uint64_t alignment_ = 32;
  std::vector<tensor> tensors_;
};

}  // namespace lmkit::io
