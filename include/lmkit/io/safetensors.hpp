// safetensors, Hugging Face's tensor file: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__":
// {"key": "value"}}), then the data; offsets count from the byte after the header. The file is
// mapped, not read: a tensor's bytes are a span into the mapping.
//
// Checked as the reference library (huggingface/safetensors) checks, and a little more: the header
// length against the file and a 100 MB limit; the JSON (an object, no key twice, every field of
// the right type); the dtype's name; shape products that overflow; offsets inside the data
// section, end >= begin, end - begin = product(shape) * element size; the tensors, taken in
// offset order, tile the data section exactly (no overlap, no gap, no trailing bytes). A damaged
// file is a format_error naming the file and the tensor or key, never a read out of bounds.
//
// A model split into shards comes with model.safetensors.index.json ({"metadata": {...},
// "weight_map": {"tensor": "shard file"}}); sharded_safetensors maps each shard once and finds a
// tensor through the index. open_safetensors takes a file, an index or a folder.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/dtype.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"

namespace lmkit::io {

/// The element types of safetensors, in the reference library's order (increasing alignment):
/// its writer puts tensors of a later type first, so that every tensor is aligned to its element.
enum class safetensors_dtype : std::uint8_t {
  boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64,
};

namespace detail {
struct safetensors_dtype_entry {
  safetensors_dtype dtype;
  std::string_view name;
  std::size_t size;
};
inline constexpr safetensors_dtype_entry safetensors_dtypes[] = {
    {safetensors_dtype::boolean, "BOOL", 1}, {safetensors_dtype::u8, "U8", 1},   {safetensors_dtype::i8, "I8", 1},
    {safetensors_dtype::f8_e5m2, "F8_E5M2", 1}, {safetensors_dtype::f8_e4m3, "F8_E4M3", 1},
    {safetensors_dtype::i16, "I16", 2},      {safetensors_dtype::u16, "U16", 2}, {safetensors_dtype::f16, "F16", 2},
    {safetensors_dtype::bf16, "BF16", 2},    {safetensors_dtype::i32, "I32", 4}, {safetensors_dtype::u32, "U32", 4},
    {safetensors_dtype::f32, "F32", 4},      {safetensors_dtype::f64, "F64", 8}, {safetensors_dtype::i64, "I64", 8},
    {safetensors_dtype::u64, "U64", 8},
};
}  // namespace detail

/// The dtype's name in the header ("F32", "BF16", "BOOL", ...).
constexpr std::string_view name_of(safetensors_dtype t) { return detail::safetensors_dtypes[std::size_t(t)].name; }
/// Bytes per element.
constexpr std::size_t element_size(safetensors_dtype t) { return detail::safetensors_dtypes[std::size_t(t)].size; }
/// The dtype called `name` in a header; nullopt for a name lmkit does not know (sub-byte types included).
constexpr std::optional<safetensors_dtype> safetensors_dtype_named(std::string_view name) {
  for (const auto& e : detail::safetensors_dtypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

/// One tensor of a file: its bytes lie in the mapping (or the parsed buffer), row-major, little-endian.
struct safetensors_tensor {
  std::string name;
  safetensors_dtype dtype = safetensors_dtype::f32;
  std::vector<std::uint64_t> shape;  // outermost first, as in PyTorch; [] is a scalar
  std::span<const std::byte> bytes;
  std::uint64_t offset = 0;  // of the first byte, from the start of the data section

  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (const auto d : shape) n *= d;  // checked against the bytes when the file was read
    return n;
  }
};

/// A tensor shape as PyTorch prints it, "[50257, 768]", for messages.
inline std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The tensor's values as F32 where they already are: a span into the file when the dtype is F32
/// and the bytes are 4-byte aligned (always so in a mapped file the reference library wrote).
inline std::optional<std::span<const float>> f32_view(const safetensors_tensor& t) {
  if (t.dtype != safetensors_dtype::f32 || reinterpret_cast<std::uintptr_t>(t.bytes.data()) % alignof(float) != 0)
    return std::nullopt;
  return std::span<const float>(reinterpret_cast<const float*>(t.bytes.data()), t.bytes.size() / sizeof(float));
}

/// Widens an F32, F16 or BF16 tensor into `out` (exactly: every 16-bit float is a float). Scalar
/// code on purpose: reading a file stays free of the Highway kernels (a loader that wants the SIMD
/// conversion calls kernels::convert on the bytes itself).
inline void to_floats(const safetensors_tensor& t, std::span<float> out) {
  const std::size_t n = std::size_t(t.elements());
  require<shape_error>(out.size() == n, "to_floats: tensor ", t.name, " has ", n, " elements, the output ", out.size());
  const std::byte* p = t.bytes.data();
  switch (t.dtype) {
    case safetensors_dtype::f32:
      if (n) std::memcpy(out.data(), p, n * sizeof(float));
      return;
    case safetensors_dtype::bf16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = bf16::from_bits(bits).to_float();
      }
      return;
    case safetensors_dtype::f16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, p + 2 * i, 2);
        out[i] = f16::from_bits(bits).to_float();
      }
      return;
    default:
      throw format_error(lmkit::detail::concat("tensor ", t.name, " is ", name_of(t.dtype), ", not F32, F16 or BF16"));
  }
}

/// A float copy of an F32, F16 or BF16 tensor; format_error naming the tensor for another dtype.
inline std::vector<float> to_floats(const safetensors_tensor& t) {
  require<format_error>(t.dtype == safetensors_dtype::f32 || t.dtype == safetensors_dtype::f16 ||
                            t.dtype == safetensors_dtype::bf16,
                        "tensor ", t.name, " is ", name_of(t.dtype), ", not F32, F16 or BF16");
  std::vector<float> out(std::size_t(t.elements()));
  to_floats(t, out);
  return out;
}

namespace detail {

/// A JSON value as text for a message, cut short: a damaged header may hold a huge array.
inline std::string brief(const nlohmann::json& v) {
  std::string text = v.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

/// Parses JSON text, refusing a key that appears twice in one object (nlohmann would keep the last
/// silently, so two tensors of one name, or two dtypes of one tensor, would be a silent choice).
inline nlohmann::json parse_json_without_duplicates(std::string_view text, std::string_view source, const char* what) {
  std::vector<std::set<std::string, std::less<>>> open;  // the keys seen in each open object
  const auto check = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using event_t = nlohmann::json::parse_event_t;
    if (event == event_t::object_start) open.emplace_back();
    else if (event == event_t::object_end && !open.empty()) open.pop_back();
    else if (event == event_t::key && !open.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      require<format_error>(open.back().insert(key).second, source, ": ", what, ": key \"", key, "\" appears twice");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(source, ": ", what, " is not valid JSON: ", e.what()));
  }
}

}  // namespace detail

class safetensors_file {
 public:
  /// The largest header read, as in the reference library: a longer one is a damaged length.
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  explicit safetensors_file(const std::filesystem::path& path) : file_(std::make_shared<mapped_file>(path)) {
    parse(file_->bytes(), path.string());
  }
  /// Parses bytes held elsewhere (tests, fuzzing); they must outlive the object.
  static safetensors_file parse_bytes(std::span<const std::byte> bytes, std::string_view source) {
    safetensors_file f;
    f.parse(bytes, source);
    return f;
  }
  static safetensors_file parse_bytes(std::string_view bytes, std::string_view source) {
    return parse_bytes(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), source);
  }

  /// The "__metadata__" strings (empty if the file has none).
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  /// Every tensor, sorted by name.
  const std::vector<safetensors_tensor>& tensors() const { return tensors_; }

  const safetensors_tensor* find(std::string_view name) const {
    const auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                     [](const safetensors_tensor& t, std::string_view n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }
  const safetensors_tensor& at(std::string_view name) const {
    const auto* t = find(name);
    require<format_error>(t != nullptr, source_, ": no tensor ", name);
    return *t;
  }
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  /// Where the data section starts: 8 + the header's length.
  std::uint64_t data_offset() const { return data_offset_; }
  const std::string& source() const { return source_; }

 private:
  safetensors_file() = default;

  void parse(std::span<const std::byte> bytes, std::string_view source) {
    source_ = std::string(source);
    require<format_error>(bytes.size() >= 8, source_, ": ", bytes.size(),
                          " bytes, shorter than the 8-byte header length of a safetensors file");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | std::uint64_t(bytes[std::size_t(i)]);
    require<format_error>(n <= max_header_bytes, source_, ": header length ", n, " is beyond the ", max_header_bytes,
                          "-byte limit (not a safetensors file, or a damaged one)");
    require<format_error>(n <= bytes.size() - 8, source_, ": header length ", n, " runs past the end of the file (",
                          bytes.size(), " bytes)");
    data_offset_ = 8 + n;
    const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, std::size_t(n));
    const nlohmann::json j = detail::parse_json_without_duplicates(header, source_, "header");
    require<format_error>(j.is_object(), source_, ": the header is JSON ", j.type_name(), ", not an object");

    const auto data = bytes.subspan(std::size_t(data_offset_));
    for (const auto& [key, value] : j.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      tensors_.push_back(read_tensor(key, value, data));
    }
    // nlohmann's objects are sorted by key: tensors_ is sorted by name, as find() needs.
    check_tiling(data.size());
  }

  void read_metadata(const nlohmann::json& value) {
    require<format_error>(value.is_object(), source_, ": __metadata__ is ", value.type_name(), ", not an object");
    for (const auto& [key, text] : value.items()) {
      require<format_error>(text.is_string(), source_, ": __metadata__ key ", key, " is ", text.type_name(),
                            ", not a string");
      metadata_.emplace(key, text.get<std::string>());
    }
  }

  safetensors_tensor read_tensor(const std::string& name, const nlohmann::json& info, std::span<const std::byte> data) const {
    const auto fail = [&](auto&&... why) {
      throw format_error(lmkit::detail::concat(source_, ": tensor ", name, ": ", why...));
    };
    if (!info.is_object()) fail("its entry is ", info.type_name(), ", not an object");
    const auto field = [&](const char* key) -> const nlohmann::json& {
      const auto it = info.find(key);
      if (it == info.end()) fail("no \"", key, "\"");
      return *it;
    };
    safetensors_tensor t;
    t.name = name;

    const auto& dtype = field("dtype");
    if (!dtype.is_string()) fail("\"dtype\" is ", dtype.type_name(), ", not a string");
    const auto known = safetensors_dtype_named(dtype.get_ref<const std::string&>());
    if (!known) fail("unknown dtype ", dtype.get_ref<const std::string&>());
    t.dtype = *known;

    const auto& shape = field("shape");
    if (!shape.is_array()) fail("\"shape\" is ", shape.type_name(), ", not an array");
    std::uint64_t elements = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) fail("\"shape\" holds ", detail::brief(d), ", not a non-negative integer");
      const auto size = d.get<std::uint64_t>();
      if (size != 0 && elements > std::numeric_limits<std::uint64_t>::max() / size)
        fail("the product of shape ", detail::brief(shape), " overflows 64 bits");
      elements *= size;
      t.shape.push_back(size);
    }
    const std::uint64_t size = element_size(t.dtype);
    if (elements > std::numeric_limits<std::uint64_t>::max() / size)
      fail("shape ", detail::brief(shape), " of ", name_of(t.dtype), " is more than 2^64 bytes");

    const auto& offsets = field("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      fail("\"data_offsets\" is ", detail::brief(offsets), ", not [begin, end] in non-negative integers");
    const auto begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    if (end < begin) fail("data_offsets [", begin, ", ", end, "] end before they begin");
    if (end > data.size())
      fail("data_offsets [", begin, ", ", end, "] run past the data section (", data.size(), " bytes)");
    if (end - begin != elements * size)
      fail("data_offsets [", begin, ", ", end, "] hold ", end - begin, " bytes, but shape ", detail::brief(shape), " of ",
           name_of(t.dtype), " needs ", elements * size);
    t.offset = begin;
    t.bytes = data.subspan(std::size_t(begin), std::size_t(end - begin));
    return t;
  }

  /// Taken in offset order, the tensors must cover the data section exactly, as the reference
  /// library requires: overlapping tensors would alias, a gap or trailing bytes mean a damaged file.
  void check_tiling(std::uint64_t data_size) const {
    std::vector<const safetensors_tensor*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
      if (a->offset != b->offset) return a->offset < b->offset;
      if (a->bytes.size() != b->bytes.size()) return a->bytes.size() < b->bytes.size();
      return a->name < b->name;  // a fixed order, so that a message names the same two tensors every time
    });
    std::uint64_t covered = 0;
    const safetensors_tensor* previous = nullptr;
    for (const auto* t : order) {
      require<format_error>(t->offset >= covered, source_, ": tensor ", t->name, " (bytes ", t->offset, " to ",
                            t->offset + t->bytes.size(), ") overlaps tensor ", previous ? previous->name : "",
                            " (which ends at byte ", covered, ")");
      require<format_error>(t->offset == covered, source_, ": bytes ", covered, " to ", t->offset,
                            " of the data section belong to no tensor (a gap before tensor ", t->name, ")");
      covered = t->offset + t->bytes.size();
      if (!t->bytes.empty()) previous = t;
    }
    require<format_error>(covered == data_size, source_, ": the last ", data_size - covered, " bytes of the ",
                          data_size, "-byte data section belong to no tensor");
  }

  std::shared_ptr<mapped_file> file_;
  std::string source_;
  std::uint64_t data_offset_ = 0;
  std::map<std::string, std::string, std::less<>> metadata_;
  std::vector<safetensors_tensor> tensors_;
};

/// model.safetensors.index.json: which shard holds each tensor.
struct safetensors_index {
  std::map<std::string, std::string, std::less<>> metadata;    // strings as they are, other values as JSON text
  std::map<std::string, std::string, std::less<>> weight_map;  // tensor name -> shard file name
};

/// Reads an index's JSON. A shard name must be a plain file name in the index's folder: one with a
/// '/' or '\\', a "..", or nothing at all is refused (an index must not reach outside its folder).
inline safetensors_index parse_safetensors_index(std::string_view json_text, std::string_view source) {
  const nlohmann::json j = detail::parse_json_without_duplicates(json_text, source, "index");
  const auto fail = [&](auto&&... why) { throw format_error(lmkit::detail::concat(source, ": ", why...)); };
  if (!j.is_object()) fail("the index is JSON ", j.type_name(), ", not an object");
  safetensors_index index;
  if (const auto it = j.find("metadata"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail("\"metadata\" is ", it->type_name(), ", not an object");
    for (const auto& [key, value] : it->items())
      index.metadata.emplace(key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  const auto map = j.find("weight_map");
  if (map == j.end()) fail("no \"weight_map\"");
  if (!map->is_object()) fail("\"weight_map\" is ", map->type_name(), ", not an object");
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string()) fail("weight_map: tensor ", tensor, " maps to ", shard.type_name(), ", not a file name");
    const auto& file = shard.get_ref<const std::string&>();
    if (file.empty() || file.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos ||
        file.find("..") != std::string::npos)
      fail("weight_map: tensor ", tensor, " is in shard \"", file,
           "\", which is not a plain file name beside the index");
    index.weight_map.emplace(tensor, file);
  }
  return index;
}

/// The tensors of a model in one file or in shards, found by name. Each shard is mapped once.
class sharded_safetensors {
 public:
  /// Opens model.safetensors.index.json and every shard it names (in the index's folder).
  static sharded_safetensors from_index(const std::filesystem::path& index_path) {
    const mapped_file text(index_path);
    const auto index = parse_safetensors_index(
        std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), index_path.string());
    sharded_safetensors s;
    s.source_ = index_path.string();
    s.metadata_ = index.metadata;
    std::map<std::string, std::size_t, std::less<>> shard_of_name;
    for (const auto& [tensor, shard] : index.weight_map) {
      auto it = shard_of_name.find(shard);
      if (it == shard_of_name.end()) {
        it = shard_of_name.emplace(shard, s.shards_.size()).first;
        s.shards_.emplace_back(index_path.parent_path() / shard);
        s.shard_names_.push_back(shard);
      }
      const auto& file = s.shards_[it->second];
      const auto* t = file.find(tensor);
      require<format_error>(t != nullptr, index_path.string(), ": tensor ", tensor, " is listed in shard ", shard,
                            ", which does not hold it");
      s.where_.emplace(tensor, location{it->second, std::size_t(t - file.tensors().data())});
    }
    return s;
  }
  /// One file seen as a model of one shard; metadata() is the file's "__metadata__".
  static sharded_safetensors from_file(const std::filesystem::path& path) {
    sharded_safetensors s;
    s.source_ = path.string();
    s.shards_.emplace_back(path);
    s.shard_names_.push_back(path.filename().string());
    s.metadata_ = s.shards_[0].metadata();
    for (std::size_t i = 0; i < s.shards_[0].tensors().size(); ++i) s.where_.emplace(s.shards_[0].tensors()[i].name, location{0, i});
    return s;
  }

  /// The index's (or the single file's) path.
  const std::string& source() const { return source_; }
  /// The index's "metadata" (for one file, its "__metadata__").
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }
  const std::vector<safetensors_file>& shards() const { return shards_; }
  /// The shards' file names, in the order of shards().
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  std::size_t size() const { return where_.size(); }

  /// Every tensor name the index lists, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& [name, _] : where_) out.push_back(name);
    return out;
  }
  const safetensors_tensor* find(std::string_view name) const {
    const auto it = where_.find(name);
    return it == where_.end() ? nullptr : &shards_[it->second.shard].tensors()[it->second.tensor];
  }
  const safetensors_tensor& at(std::string_view name) const {
    const auto* t = find(name);
    require<format_error>(t != nullptr, source_, ": no tensor ", name);
    return *t;
  }
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  /// The file name of the shard holding tensor `name`.
  const std::string& shard_of(std::string_view name) const {
    const auto it = where_.find(name);
    require<format_error>(it != where_.end(), source_, ": no tensor ", name);
    return shard_names_[it->second.shard];
  }

 private:
  struct location {
    std::size_t shard, tensor;  // indices, so that copies and moves stay valid
  };
  std::string source_;
  std::map<std::string, std::string, std::less<>> metadata_;
  std::vector<safetensors_file> shards_;
  std::vector<std::string> shard_names_;
  std::map<std::string, location, std::less<>> where_;
};

/// A model's tensors from a .safetensors file, a model.safetensors.index.json, or a folder holding
/// either (the index first, as transformers looks).
inline sharded_safetensors open_safetensors(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors.index.json"))
      return sharded_safetensors::from_index(path / "model.safetensors.index.json");
    if (fs::exists(path / "model.safetensors")) return sharded_safetensors::from_file(path / "model.safetensors");
    throw io_error(lmkit::detail::concat(path.string(), ": neither model.safetensors.index.json nor model.safetensors is here"));
  }
  if (path.extension() == ".json") return sharded_safetensors::from_index(path);
  return sharded_safetensors::from_file(path);
}

}  // namespace lmkit::io
