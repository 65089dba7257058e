// GGUF, llama.cpp's model file (versions 2 and 3): a header, typed metadata (key -> value, arrays
// included), tensor descriptions, then the tensors' data at an aligned offset. The file is mapped,
// not read: a tensor's bytes are a span into the mapping. Every count, length and offset is
// checked against the file's size before use, so a damaged file is a format_error naming what
// and where, never a read out of bounds.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"

namespace lmkit::io {

/// Metadata value types, numbered as in the GGUF specification.
enum class gguf_type : std::uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};

/// Tensor element types (ggml's numbering). lmkit knows the size of these; others are refused.
enum class ggml_type : std::uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15, bf16 = 30,
};

/// Elements per block and bytes per block of a tensor type; {0, 0} for a type lmkit does not know.
inline std::pair<std::uint64_t, std::uint64_t> ggml_block(ggml_type t) {
  switch (t) {
    case ggml_type::f32: return {1, 4};
    case ggml_type::f16: return {1, 2};
    case ggml_type::bf16: return {1, 2};
    case ggml_type::q4_0: return {32, 18};
    case ggml_type::q4_1: return {32, 20};
    case ggml_type::q5_0: return {32, 22};
    case ggml_type::q5_1: return {32, 24};
    case ggml_type::q8_0: return {32, 34};
    case ggml_type::q8_1: return {32, 36};
    case ggml_type::q2_k: return {256, 84};
    case ggml_type::q3_k: return {256, 110};
    case ggml_type::q4_k: return {256, 144};
    case ggml_type::q5_k: return {256, 176};
    case ggml_type::q6_k: return {256, 210};
    case ggml_type::q8_k: return {256, 292};
  }
  return {0, 0};
}

struct gguf_value;
struct gguf_array {
  gguf_type element_type;
  std::vector<gguf_value> items;
};

/// One metadata value: unsigned integers as uint64, signed as int64, floats as double.
struct gguf_value {
  gguf_type type;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, std::shared_ptr<gguf_array>> value;
};

struct gguf_tensor_info {
  std::string name;
  std::vector<std::uint64_t> dims;  // ggml order: dims[0] is the fastest-varying (a row's length)
  ggml_type type;
  std::uint64_t offset;  // from the start of the data section
  std::uint64_t bytes;
  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (const auto d : dims) n *= d;
    return n;
  }
};

class gguf_file {
 public:
  explicit gguf_file(const std::filesystem::path& path) : file_(std::make_shared<mapped_file>(path)) {
    parse({reinterpret_cast<const char*>(file_->data()), file_->size()}, path.string());
  }
  /// Parses bytes held elsewhere (tests, fuzzing); they must outlive the object.
  static gguf_file parse_bytes(std::string_view bytes, std::string_view source) {
    gguf_file f;
    f.parse(bytes, source);
    return f;
  }

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  const std::map<std::string, gguf_value, std::less<>>& metadata() const { return metadata_; }
  const std::vector<gguf_tensor_info>& tensors() const { return tensors_; }

  bool contains(std::string_view key) const { return metadata_.find(key) != metadata_.end(); }
  const gguf_value& at(std::string_view key) const {
    const auto it = metadata_.find(key);
    require<format_error>(it != metadata_.end(), source_, ": metadata key ", key, " is missing");
    return it->second;
  }
  std::string get_string(std::string_view key) const { return as<std::string>(key, at(key)); }
  /// general.architecture ("llama", "gpt2", ...), or "" when the file does not say.
  std::string architecture() const {
    return contains("general.architecture") ? get_string("general.architecture") : std::string();
  }
  std::uint64_t get_uint(std::string_view key) const {
    const auto& v = at(key);
    if (const auto* s = std::get_if<std::int64_t>(&v.value)) {
      require<format_error>(*s >= 0, source_, ": metadata key ", key, " is negative");
      return std::uint64_t(*s);
    }
    return as<std::uint64_t>(key, v);
  }
  double get_float(std::string_view key) const { return as<double>(key, at(key)); }
  bool get_bool(std::string_view key) const { return as<bool>(key, at(key)); }
  const gguf_array& get_array(std::string_view key) const { return *as<std::shared_ptr<gguf_array>>(key, at(key)); }

  const gguf_tensor_info* find_tensor(std::string_view name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  /// The bytes of a tensor, inside the mapping.
  std::span<const std::byte> tensor_bytes(const gguf_tensor_info& t) const {
    return std::as_bytes(std::span<const char>(bytes_.data() + data_offset_ + t.offset, t.bytes));
  }
  const std::string& source() const { return source_; }

 private:
  gguf_file() = default;

  template <class T>
  const T& as(std::string_view key, const gguf_value& v) const {
    const T* p = std::get_if<T>(&v.value);
    require<format_error>(p != nullptr, source_, ": metadata key ", key, " has type ", std::uint32_t(v.type),
                          ", not the one asked for");
    return *p;
  }

  // --- parsing, every read bounds-checked ---
  void need(std::uint64_t n, const char* what) const {
    require<format_error>(n <= bytes_.size() - pos_, source_, ": ", what, " at byte ", pos_, " runs past the end (",
                          bytes_.size(), " bytes)");
  }
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const auto n = read<std::uint64_t>(what);
    need(n, what);
    std::string s(bytes_.substr(pos_, std::size_t(n)));
    pos_ += std::size_t(n);
    return s;
  }
  gguf_value read_value(gguf_type type, const std::string& key, int depth) {
    switch (type) {
      case gguf_type::uint8: return {type, std::uint64_t(read<std::uint8_t>(key.c_str()))};
      case gguf_type::uint16: return {type, std::uint64_t(read<std::uint16_t>(key.c_str()))};
      case gguf_type::uint32: return {type, std::uint64_t(read<std::uint32_t>(key.c_str()))};
      case gguf_type::uint64: return {type, read<std::uint64_t>(key.c_str())};
      case gguf_type::int8: return {type, std::int64_t(read<std::int8_t>(key.c_str()))};
      case gguf_type::int16: return {type, std::int64_t(read<std::int16_t>(key.c_str()))};
      case gguf_type::int32: return {type, std::int64_t(read<std::int32_t>(key.c_str()))};
      case gguf_type::int64: return {type, read<std::int64_t>(key.c_str())};
      case gguf_type::float32: return {type, double(read<float>(key.c_str()))};
      case gguf_type::float64: return {type, read<double>(key.c_str())};
      case gguf_type::boolean: {
        const auto b = read<std::uint8_t>(key.c_str());
        require<format_error>(b <= 1, source_, ": metadata key ", key, ": boolean byte ", int(b), " is neither 0 nor 1");
        return {type, b == 1};
      }
      case gguf_type::string: return {type, read_string(key.c_str())};
      case gguf_type::array: {
        require<format_error>(depth < 4, source_, ": metadata key ", key, ": arrays nested too deeply");
        const auto element = read<std::uint32_t>(key.c_str());
        const auto count = read<std::uint64_t>(key.c_str());
        require<format_error>(element <= 12, source_, ": metadata key ", key, ": unknown array element type ", element);
        // Every element takes at least one byte: a count beyond the bytes left is a lie.
        require<format_error>(count <= bytes_.size() - pos_, source_, ": metadata key ", key, ": array of ", count,
                              " elements cannot fit in the ", bytes_.size() - pos_, " bytes left");
        auto array = std::make_shared<gguf_array>();
        array->element_type = gguf_type(element);
        array->items.reserve(std::size_t(count));
        for (std::uint64_t i = 0; i < count; ++i) array->items.push_back(read_value(gguf_type(element), key, depth + 1));
        return {type, std::move(array)};
      }
    }
    throw format_error(lmkit::detail::concat(source_, ": metadata key ", key, " has unknown type ", std::uint32_t(type)));
  }

  void parse(std::string_view bytes, std::string_view source) {
    bytes_ = bytes;
    source_ = std::string(source);
    pos_ = 0;
    need(4, "magic");
    require<format_error>(bytes_.substr(0, 4) == "GGUF", source_, ": not a GGUF file (no 'GGUF' magic)");
    pos_ = 4;
    version_ = read<std::uint32_t>("version");
    require<format_error>(version_ == 2 || version_ == 3, source_, ": GGUF version ", version_,
                          " (lmkit reads versions 2 and 3)");
    const auto tensor_count = read<std::uint64_t>("tensor count");
    const auto kv_count = read<std::uint64_t>("metadata count");
    // A key-value pair takes at least 13 bytes and a tensor description at least 24.
    require<format_error>(kv_count <= (bytes_.size() - pos_) / 13, source_, ": ", kv_count,
                          " metadata entries cannot fit in the file");
    require<format_error>(tensor_count <= (bytes_.size() - pos_) / 24, source_, ": ", tensor_count,
                          " tensors cannot fit in the file");
    for (std::uint64_t i = 0; i < kv_count; ++i) {
      std::string key = read_string("metadata key");
      const auto type = read<std::uint32_t>(key.c_str());
      gguf_value value = read_value(gguf_type(type), key, 0);
      require<format_error>(metadata_.emplace(key, std::move(value)).second, source_, ": metadata key ", key,
                            " appears twice");
    }
    if (const auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
      const auto* a = std::get_if<std::uint64_t>(&it->second.value);
      require<format_error>(a && *a > 0 && *a <= 65536 && (*a & (*a - 1)) == 0, source_,
                            ": general.alignment must be a power of two up to 65536");
      alignment_ = *a;
    }
    tensors_.reserve(std::size_t(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      gguf_tensor_info t;
      t.name = read_string("tensor name");
      const auto n_dims = read<std::uint32_t>(t.name.c_str());
      require<format_error>(n_dims >= 1 && n_dims <= 4, source_, ": tensor ", t.name, " has ", n_dims,
                            " dimensions (1 to 4 allowed)");
      std::uint64_t elements = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const auto size = read<std::uint64_t>(t.name.c_str());
        require<format_error>(size > 0 && size <= (std::uint64_t(1) << 40) / elements, source_, ": tensor ", t.name,
                              ": dimension ", d, " of size ", size, " is zero or too large");
        elements *= size;
        t.dims.push_back(size);
      }
      t.type = ggml_type(read<std::uint32_t>(t.name.c_str()));
      const auto [per_block, block_bytes] = ggml_block(t.type);
      require<format_error>(per_block != 0, source_, ": tensor ", t.name, " has type ", std::uint32_t(t.type),
                            ", which lmkit does not know");
      require<format_error>(t.dims[0] % per_block == 0, source_, ": tensor ", t.name, ": row of ", t.dims[0],
                            " elements is not a whole number of ", per_block, "-element blocks");
      t.bytes = elements / per_block * block_bytes;
      t.offset = read<std::uint64_t>(t.name.c_str());
      require<format_error>(t.offset % alignment_ == 0, source_, ": tensor ", t.name, ": offset ", t.offset,
                            " is not a multiple of the alignment ", alignment_);
      tensors_.push_back(std::move(t));
    }
    data_offset_ = (pos_ + alignment_ - 1) / alignment_ * alignment_;
    require<format_error>(tensors_.empty() || data_offset_ <= bytes_.size(), source_, ": data section starts past the end");
    for (const auto& t : tensors_) {
      require<format_error>(t.offset <= bytes_.size() - data_offset_ && t.bytes <= bytes_.size() - data_offset_ - t.offset,
                            source_, ": tensor ", t.name, " (", t.bytes, " bytes at data offset ", t.offset,
                            ") runs past the end of the file (", bytes_.size(), " bytes)");
    }
  }

  std::shared_ptr<mapped_file> file_;
  std::string_view bytes_;
  std::string source_;
  std::size_t pos_ = 0;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, gguf_value, std::less<>> metadata_;
  std::vector<gguf_tensor_info> tensors_;
};

}  // namespace lmkit::io
