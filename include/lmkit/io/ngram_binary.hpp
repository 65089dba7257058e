// lmkit's binary n-gram format: the model's hash tables written as they lie in memory, so that
// loading maps the file and points at them (no parsing, no copying).
//
// Layout (little-endian; every section starts at a multiple of 64 bytes):
//   header   magic "LMKITNG\0", u32 version (1), u32 order, u64 vocabulary size, u64 vocabulary
//            bytes, u64 checksum of everything after the header, then per order u64 entries and
//            u64 slots
//   words    the vocabulary, each word followed by '\0', in id order
//   order n  word ids (entries x n u32), values (entries x {f32 log10 p, f32 log10 back-off}),
//            hash slots (slots x u32; 0 empty, else 1 + entry)
// The reader checks the magic, version, sizes against the file's size, the checksum, the vocabulary
// and every hash slot before it trusts them, and names the file and what was wrong.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/error.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/io/arpa.hpp"
#include "lmkit/models/ngram/ngram_model.hpp"

namespace lmkit::io {

namespace ngram_binary_detail {

inline constexpr char magic[8] = {'L', 'M', 'K', 'I', 'T', 'N', 'G', '\0'};
inline constexpr std::uint32_t version = 1;
inline constexpr std::size_t alignment = 64;

struct header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t order;
  std::uint64_t vocab_size;
  std::uint64_t vocab_bytes;
  std::uint64_t checksum;
};
struct order_header {
  std::uint64_t entries;
  std::uint64_t slots;
};
static_assert(sizeof(header) == 40 && sizeof(order_header) == 16);
static_assert(std::endian::native == std::endian::little, "the binary n-gram format is little-endian");

inline std::size_t aligned(std::size_t n) { return (n + alignment - 1) / alignment * alignment; }

/// A fast 64-bit checksum: four multiply-add lanes over 8-byte words, then the tail bytes.
inline std::uint64_t checksum(const std::byte* data, std::size_t size) {
  std::uint64_t lane[4] = {1, 2, 3, 4};
  constexpr std::uint64_t prime = 0x9e3779b97f4a7c15ull;
  std::size_t i = 0;
  for (; i + 32 <= size; i += 32)
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, data + i + 8 * k, 8);
      lane[k] = (lane[k] ^ w) * prime;
      lane[k] ^= lane[k] >> 29;
    }
  std::uint64_t h = lane[0] ^ std::rotl(lane[1], 17) ^ std::rotl(lane[2], 31) ^ std::rotl(lane[3], 47);
  for (; i < size; ++i) h = (h ^ static_cast<std::uint8_t>(data[i])) * prime;
  return h ^ size;
}

inline std::size_t header_size(std::size_t order) { return aligned(sizeof(header) + order * sizeof(order_header)); }

}  // namespace ngram_binary_detail

/// Writes `model` in the binary format, atomically.
inline void write_ngram_binary(const ngram::ngram_model& model, const std::filesystem::path& path) {
  using namespace ngram_binary_detail;
  const std::size_t order = model.order();
  std::vector<std::byte> body;
  auto append = [&](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::byte*>(data);
    body.insert(body.end(), p, p + bytes);
    body.resize(aligned(body.size()));
  };
  std::string words;
  for (std::size_t id = 0; id < model.vocab().size(); ++id) words += model.vocab().word(static_cast<ngram::word_id>(id)) + '\0';
  append(words.data(), words.size());
  std::vector<order_header> orders(order);
  for (std::size_t n = 1; n <= order; ++n) {
    const auto& t = model.table(n);
    orders[n - 1] = {t.size(), t.all_slots().size()};
    append(t.all_words().data(), t.all_words().size_bytes());
    append(t.all_values().data(), t.all_values().size_bytes());
    append(t.all_slots().data(), t.all_slots().size_bytes());
  }
  std::vector<std::byte> head(header_size(order));
  header h{};
  std::memcpy(h.magic, magic, sizeof magic);
  h.version = version;
  h.order = static_cast<std::uint32_t>(order);
  h.vocab_size = model.vocab().size();
  h.vocab_bytes = words.size();
  h.checksum = checksum(body.data(), body.size());
  std::memcpy(head.data(), &h, sizeof h);
  std::memcpy(head.data() + sizeof h, orders.data(), orders.size() * sizeof(order_header));
  atomic_file_writer writer(path);
  writer.write(head);
  writer.write(body);
  writer.commit();
}

/// Maps a binary model. The tables point into the mapping, which the model keeps alive.
inline ngram::ngram_model load_ngram_binary(const std::filesystem::path& path) {
  using namespace ngram_binary_detail;
  auto file = std::make_shared<mapped_file>(path);
  const std::string name = path.string();
  auto fail_unless = [&](bool ok, auto&&... what) { require<format_error>(ok, name, ": ", what...); };
  fail_unless(file->size() >= sizeof(header), "too short for an lmkit n-gram header (", file->size(), " bytes)");
  header h;
  std::memcpy(&h, file->data(), sizeof h);
  fail_unless(std::memcmp(h.magic, magic, sizeof magic) == 0, "not an lmkit binary n-gram model (bad magic)");
  fail_unless(h.version == version, "format version ", h.version, ", this reader knows version ", version);
  fail_unless(h.order >= 1 && h.order <= ngram::max_order, "order ", h.order, " is out of range");
  const std::size_t head = header_size(h.order);
  fail_unless(file->size() >= head, "the header's order table runs past the end of the file");
  std::vector<order_header> orders(h.order);
  std::memcpy(orders.data(), file->data() + sizeof h, orders.size() * sizeof(order_header));

  // Every section's place, checked against the file size before anything is read.
  std::size_t offset = head;
  auto section = [&](std::uint64_t count, std::size_t element, const char* what, std::size_t n) {
    fail_unless(count <= (file->size() - std::min(offset, file->size())) / element, what, n ? " of order " + std::to_string(n) : "", " (", count,
                " x ", element, " bytes at offset ", offset, ") run past the end of the file");
    const std::size_t at = offset;
    offset = aligned(offset + count * element);
    return at;
  };
  const std::size_t vocab_at = section(h.vocab_bytes, 1, "the vocabulary", 0);
  struct places {
    std::size_t words, values, slots;
  };
  std::vector<places> at(h.order);
  for (std::size_t n = 1; n <= h.order; ++n) {
    const auto& o = orders[n - 1];
    fail_unless(o.entries < (1ull << 32) && o.slots <= (1ull << 34), "order ", n, " claims ", o.entries, " entries and ",
                o.slots, " slots");
    at[n - 1].words = section(o.entries * n, sizeof(ngram::word_id), "word ids", n);
    at[n - 1].values = section(o.entries, sizeof(ngram::ngram_entry), "values", n);
    at[n - 1].slots = section(o.slots, sizeof(std::uint32_t), "hash slots", n);
  }
  fail_unless(offset == file->size(), "the file has ", file->size(),
              " bytes but its header describes ", offset);
  fail_unless(checksum(file->data() + head, file->size() - head) == h.checksum,
              "checksum mismatch: the file is damaged or was not completely written");

  // The vocabulary: exactly vocab_size words, each ended by '\0', starting with <unk> <s> </s>.
  ngram::vocabulary vocab;
  const char* words = reinterpret_cast<const char*>(file->data() + vocab_at);
  std::size_t pos = 0, count = 0;
  while (pos < h.vocab_bytes) {
    const void* end = std::memchr(words + pos, '\0', h.vocab_bytes - pos);
    fail_unless(end != nullptr, "the vocabulary's last word has no terminator");
    const std::string_view word(words + pos, static_cast<const char*>(end) - (words + pos));
    fail_unless(vocab.insert(word) == count, "vocabulary word ", count, " ('", word, "') is a duplicate or misplaced");
    ++count;
    pos += word.size() + 1;
  }
  fail_unless(count == h.vocab_size, "the vocabulary holds ", count, " words, the header says ", h.vocab_size);

  std::vector<ngram::ngram_table<ngram::ngram_entry>> tables;
  for (std::size_t n = 1; n <= h.order; ++n) {
    const auto& o = orders[n - 1];
    const auto* base = file->data();
    tables.push_back(ngram::ngram_table<ngram::ngram_entry>::view(
        n, {reinterpret_cast<const ngram::word_id*>(base + at[n - 1].words), o.entries * n},
        {reinterpret_cast<const ngram::ngram_entry*>(base + at[n - 1].values), o.entries},
        {reinterpret_cast<const std::uint32_t*>(base + at[n - 1].slots), o.slots}));
  }
  fail_unless(std::as_const(tables[0]).find(std::array<ngram::word_id, 1>{ngram::unk_id}) != nullptr, "no unigram for <unk>");
  return ngram::ngram_model(std::move(vocab), std::move(tables), std::move(file));
}

/// Whether the file starts with the binary format's magic bytes.
inline bool is_ngram_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char start[8] = {};
  in.read(start, sizeof start);
  return in.gcount() == sizeof start && std::memcmp(start, ngram_binary_detail::magic, sizeof start) == 0;
}

/// Loads an n-gram model from a binary or an ARPA file, telling them apart by the magic bytes.
inline ngram::ngram_model load_ngram_model(const std::filesystem::path& path) {
  return is_ngram_binary(path) ? load_ngram_binary(path) : read_arpa(path);
}

}  // namespace lmkit::io
