// Fuzz target: a safetensors file of any bytes parses or is an lmkit::format_error; one that parses
// gives tensor spans inside the input (every byte is read here), floats for its F32/F16/BF16
// tensors, and written again by safetensors_writer reads back with the same tensors and metadata.
// The same bytes are also read as a model.safetensors.index.json.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "lmkit/io/safetensors.hpp"
#include "lmkit/io/safetensors_writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<lmkit::io::safetensors_file> file;
  try {
    file.emplace(lmkit::io::safetensors_file::parse_bytes(bytes, "fuzz.safetensors"));
  } catch (const lmkit::format_error&) {
  }
  if (file) {
    const auto* begin = reinterpret_cast<const std::byte*>(data);
    unsigned sum = 0;
    std::uint64_t covered = 0;
    for (const auto& t : file->tensors()) {
      if (t.bytes.data() < begin || t.bytes.data() + t.bytes.size() > begin + size) std::abort();
      if (t.bytes.size() != t.elements() * lmkit::io::element_size(t.dtype)) std::abort();
      for (const auto b : t.bytes) sum += unsigned(b);
      covered += t.bytes.size();
      if (file->find(t.name) != &t) std::abort();
      if (t.dtype == lmkit::io::safetensors_dtype::f32 || t.dtype == lmkit::io::safetensors_dtype::f16 ||
          t.dtype == lmkit::io::safetensors_dtype::bf16) {
        const auto floats = lmkit::io::to_floats(t);
        if (floats.size() != t.elements()) std::abort();
      }
      if (const auto view = lmkit::io::f32_view(t); view && view->size() != t.elements()) std::abort();
    }
    if (file->data_offset() + covered != size) std::abort();  // the tensors tile the data section
    (void)sum;
    // Written again (any exception here is a bug: what was read must be writable) and read back.
    lmkit::io::safetensors_writer w;
    for (const auto& [key, value] : file->metadata()) w.add_metadata(key, value);
    for (const auto& t : file->tensors()) w.add(t.name, t.dtype, t.shape, t.bytes);
    const std::string again = w.bytes();
    const auto back = lmkit::io::safetensors_file::parse_bytes(again, "again.safetensors");
    if (back.tensors().size() != file->tensors().size() || back.metadata() != file->metadata()) std::abort();
    for (std::size_t i = 0; i < back.tensors().size(); ++i) {
      const auto& a = file->tensors()[i];
      const auto& b = back.tensors()[i];
      if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.bytes.size() != b.bytes.size() ||
          !std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin()))
        std::abort();
    }
  }
  try {
    const auto index = lmkit::io::parse_safetensors_index(bytes, "fuzz.index.json");
    for (const auto& [tensor, shard] : index.weight_map)
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) std::abort();
  } catch (const lmkit::format_error&) {
  }
  return 0;
}
