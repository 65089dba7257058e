// safetensors: files written here read back (every dtype, metadata, empty and scalar tensors), the
// writer's bytes equal the reference library's for its own test cases, 16-bit floats widen to the
// values their bits mean, sharded models through their index, damaged files refused with the file
// and the tensor named, and the fixture models' files agree with their config.json.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "lmkit/io/safetensors.hpp"
#include "lmkit/io/safetensors_writer.hpp"
#include "test_support.hpp"

using lmkit::io::safetensors_dtype;
using lmkit::io::safetensors_file;
using lmkit::io::safetensors_writer;
using lmkit::io::sharded_safetensors;
using lmkit::test::shared_data;

namespace {

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char(n >> (8 * i) & 0xff);
  return out;
}

/// A file of `header` (used as it is, unpadded) and `data_bytes` zero bytes.
std::string file_of(std::string_view header, std::size_t data_bytes = 0) {
  return le64(header.size()) + std::string(header) + std::string(data_bytes, '\0');
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// Parsing `bytes` is a format_error whose message names the file and contains `needle`.
void expect_format_error(const std::string& bytes, const std::string& needle) {
  INFO("expecting an error with: " << needle);
  REQUIRE_THROWS_AS(safetensors_file::parse_bytes(bytes, "bad.safetensors"), lmkit::format_error);
  CHECK_THROWS_WITH(safetensors_file::parse_bytes(bytes, "bad.safetensors"),
                    Catch::Contains("bad.safetensors: ") && Catch::Contains(needle));
}

const std::vector<std::pair<safetensors_dtype, std::size_t>> every_dtype{
    {safetensors_dtype::boolean, 1}, {safetensors_dtype::u8, 1},   {safetensors_dtype::i8, 1},
    {safetensors_dtype::f8_e5m2, 1}, {safetensors_dtype::f8_e4m3, 1}, {safetensors_dtype::i16, 2},
    {safetensors_dtype::u16, 2},     {safetensors_dtype::f16, 2},  {safetensors_dtype::bf16, 2},
    {safetensors_dtype::i32, 4},     {safetensors_dtype::u32, 4},  {safetensors_dtype::f32, 4},
    {safetensors_dtype::f64, 8},     {safetensors_dtype::i64, 8},  {safetensors_dtype::u64, 8},
};

}  // namespace

TEST_CASE("dtype names and sizes", "[safetensors]") {
  for (const auto& [dtype, size] : every_dtype) {
    INFO(lmkit::io::name_of(dtype));
    CHECK(lmkit::io::element_size(dtype) == size);
    CHECK(lmkit::io::safetensors_dtype_named(lmkit::io::name_of(dtype)) == dtype);
  }
  CHECK(lmkit::io::name_of(safetensors_dtype::boolean) == "BOOL");
  CHECK(lmkit::io::name_of(safetensors_dtype::bf16) == "BF16");
  CHECK_FALSE(lmkit::io::safetensors_dtype_named("f32"));  // names are upper case
  CHECK_FALSE(lmkit::io::safetensors_dtype_named("F4"));   // sub-byte types are not read
}

TEST_CASE("safetensors_writer's files read back: every dtype, metadata, empty and scalar tensors", "[safetensors][writer]") {
  safetensors_writer w;
  std::vector<std::vector<std::byte>> data;
  for (const auto& [dtype, size] : every_dtype) {
    std::vector<std::byte> bytes(2 * 3 * size);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte((i * 7 + std::size_t(dtype)) & 0xff);
    w.add("t." + std::string(lmkit::io::name_of(dtype)), dtype, {2, 3}, bytes);
    data.push_back(std::move(bytes));
  }
  const std::vector<float> weights{1.5f, -2.0f, 0.25f, 8.0f};
  w.add("weights", {2, 2}, weights);
  w.add("empty", safetensors_dtype::f32, {3, 0}, {});
  const std::vector<std::uint16_t> one_bf16{0x3F80};
  w.add("scalar", safetensors_dtype::bf16, {}, bytes_of(one_bf16));
  w.add_metadata("format", "pt");
  w.add_metadata("note", "\xC3\xBC \"quoted\"\n");

  const auto path = lmkit::test::temporary_folder("safetensors") / "every_dtype.safetensors";
  w.write(path);
  CHECK(lmkit::test::read_file(path) == w.bytes());
  const safetensors_file f(path);
  CHECK(f.source() == path.string());
  CHECK(f.metadata() == std::map<std::string, std::string, std::less<>>{{"format", "pt"}, {"note", "\xC3\xBC \"quoted\"\n"}});
  CHECK((f.data_offset() - 8) % 8 == 0);
  CHECK(f.data_offset() - 8 == w.header().size());
  CHECK(w.header().size() % 8 == 0);
  REQUIRE(f.tensors().size() == every_dtype.size() + 3);
  CHECK(std::is_sorted(f.tensors().begin(), f.tensors().end(), [](const auto& a, const auto& b) { return a.name < b.name; }));

  for (std::size_t k = 0; k < every_dtype.size(); ++k) {
    const auto& t = f.at("t." + std::string(lmkit::io::name_of(every_dtype[k].first)));
    INFO(t.name);
    CHECK(t.dtype == every_dtype[k].first);
    CHECK(t.shape == std::vector<std::uint64_t>{2, 3});
    CHECK(t.elements() == 6);
    CHECK(text_of(t.bytes) == text_of(data[k]));
    // Widest first and an 8-aligned start: every tensor lies aligned to its element in the mapping.
    CHECK(reinterpret_cast<std::uintptr_t>(t.bytes.data()) % every_dtype[k].second == 0);
  }
  const auto& empty = f.at("empty");
  CHECK(empty.shape == std::vector<std::uint64_t>{3, 0});
  CHECK(empty.elements() == 0);
  CHECK(empty.bytes.empty());
  CHECK(lmkit::io::to_floats(empty).empty());
  const auto& scalar = f.at("scalar");
  CHECK(scalar.shape.empty());
  CHECK(scalar.elements() == 1);
  CHECK(lmkit::io::to_floats(scalar) == std::vector<float>{1.0f});

  // F32, aligned: a view into the mapping, no copy.
  const auto& wt = f.at("weights");
  const auto view = lmkit::io::f32_view(wt);
  REQUIRE(view);
  CHECK(static_cast<const void*>(view->data()) == static_cast<const void*>(wt.bytes.data()));
  CHECK(std::vector<float>(view->begin(), view->end()) == weights);
  CHECK(lmkit::io::to_floats(wt) == weights);

  // The data is in the reference library's order: widest dtype first, then by name.
  std::vector<const lmkit::io::safetensors_tensor*> by_offset;
  for (const auto& t : f.tensors()) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  std::vector<std::string> order;
  for (const auto* t : by_offset)
    if (!t->bytes.empty()) order.push_back(t->name);
  CHECK(order == std::vector<std::string>{"t.U64", "t.I64", "t.F64", "t.F32", "weights", "t.U32", "t.I32", "scalar",
                                          "t.BF16", "t.F16", "t.U16", "t.I16", "t.F8_E4M3", "t.F8_E5M2", "t.I8",
                                          "t.U8", "t.BOOL"});

  CHECK(f.find("nope") == nullptr);
  CHECK_FALSE(f.contains("nope"));
  REQUIRE_THROWS_AS(f.at("nope"), lmkit::format_error);
  CHECK_THROWS_WITH(f.at("nope"), Catch::Contains(path.string()) && Catch::Contains("no tensor nope"));

  // The same bytes parsed in memory give the same tensors.
  const std::string bytes = w.bytes();
  const auto g = safetensors_file::parse_bytes(bytes, "memory");
  REQUIRE(g.tensors().size() == f.tensors().size());
  for (std::size_t i = 0; i < g.tensors().size(); ++i) {
    CHECK(g.tensors()[i].name == f.tensors()[i].name);
    CHECK(text_of(g.tensors()[i].bytes) == text_of(f.tensors()[i].bytes));
  }
}

TEST_CASE("safetensors_writer refuses what it cannot write", "[safetensors][writer]") {
  safetensors_writer w;
  const std::vector<float> two{1, 2};
  w.add("a", {2}, two);
  CHECK_THROWS_AS(w.add("a", {2}, two), lmkit::argument_error);
  CHECK_THROWS_WITH(w.add("a", {1, 2}, two), Catch::Contains("tensor a is added twice"));
  CHECK_THROWS_AS(w.add("__metadata__", {2}, two), lmkit::argument_error);
  CHECK_THROWS_WITH(w.add("b", {3}, two), Catch::Contains("tensor b: 8 bytes") && Catch::Contains("needs 12"));
  CHECK_THROWS_AS(w.add("c", safetensors_dtype::u8, {std::uint64_t(1) << 40, std::uint64_t(1) << 40}, {}),
                  lmkit::argument_error);
  CHECK_THROWS_AS(w.add("\xFF", {2}, two), lmkit::argument_error);
  w.add_metadata("k", "v");
  CHECK_THROWS_AS(w.add_metadata("k", "w"), lmkit::argument_error);
  CHECK_THROWS_AS(w.add_metadata("k2", "\xC3"), lmkit::argument_error);
  // What was refused left the writer as it was.
  const auto f = safetensors_file::parse_bytes(w.bytes(), "w");
  CHECK(f.tensors().size() == 1);
  CHECK(f.metadata().size() == 1);
}

TEST_CASE("the writer's bytes are the reference library's", "[safetensors][writer]") {
  // The cases of huggingface/safetensors' own serialisation tests (safetensors/src/tensor.rs).
  const std::vector<float> values{0, 1, 2, 3, 4, 5};
  const std::string data(reinterpret_cast<const char*>(values.data()), 24);
  {
    safetensors_writer w;
    w.add("attn.0", {1, 2, 3}, values);
    const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    REQUIRE(header.size() == 64);  // no padding needed
    CHECK(w.bytes() == le64(64) + header + data);
  }
  {
    safetensors_writer w;
    w.add("attn0", {1, 1, 2, 3}, values);
    CHECK(w.bytes() == le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " + data);
  }
  CHECK(safetensors_writer().bytes() == le64(8) + "{}      ");
  {
    safetensors_writer w;
    w.add_metadata("framework", "pt");
    CHECK(w.bytes() == le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");
  }
  {  // mixed dtypes: widest first, then by name
    safetensors_writer w;
    const std::vector<std::uint8_t> u8{1};
    const std::vector<std::uint16_t> h{0x3C00};
    const std::vector<double> d{1.0};
    w.add("b", safetensors_dtype::u8, {1}, bytes_of(u8));
    w.add("a", safetensors_dtype::u8, {1}, bytes_of(u8));
    w.add("z", safetensors_dtype::f64, {1}, bytes_of(d));
    w.add("c", safetensors_dtype::f16, {1}, bytes_of(h));
    CHECK(w.header() == R"({"z":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},)"
                        R"("c":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},)"
                        R"("a":{"dtype":"U8","shape":[1],"data_offsets":[10,11]},)"
                        R"("b":{"dtype":"U8","shape":[1],"data_offsets":[11,12]}})");  // 216 bytes: no padding
  }
}

TEST_CASE("F16 and BF16 tensors widen to the floats their bits mean", "[safetensors]") {
  // Values worked out by hand from the bit fields (sign, exponent, mantissa).
  const std::vector<std::uint16_t> f16_bits{0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x0400, 0x8000, 0x7C00, 0xFC00, 0x3800, 0x7E00};
  const std::vector<float> f16_values{1.0f, -2.0f, 0.333251953125f,  // 2^-2 * (1 + 341/1024)
                                      65504.0f,                      // 2^15 * (2 - 2^-10), the largest half
                                      std::ldexp(1.0f, -24),         // the smallest subnormal
                                      std::ldexp(1.0f, -14),         // the smallest normal
                                      -0.0f, INFINITY, -INFINITY, 0.5f, NAN};
  const std::vector<std::uint16_t> bf16_bits{0x3F80, 0x4049, 0xC2F7, 0x3E80, 0x0001, 0x7F80, 0xFF80, 0x8000, 0x7FC0};
  const std::vector<float> bf16_values{1.0f, 3.140625f,       // 2 * (1 + 73/128)
                                       -123.5f,               // -(2^6 * (1 + 119/128))
                                       0.25f, std::ldexp(1.0f, -133),  // 2^-126 * 2^-7, subnormal
                                       INFINITY, -INFINITY, -0.0f, NAN};
  safetensors_writer w;
  w.add("h", safetensors_dtype::f16, {f16_bits.size()}, bytes_of(f16_bits));
  w.add("b", safetensors_dtype::bf16, {bf16_bits.size()}, bytes_of(bf16_bits));
  const std::vector<std::int32_t> ids{1, 2, 3};
  w.add("ids", safetensors_dtype::i32, {3}, bytes_of(ids));
  const auto path = lmkit::test::temporary_folder("safetensors") / "halves.safetensors";
  w.write(path);
  const safetensors_file f(path);

  const auto check = [](const std::vector<float>& got, const std::vector<float>& expected) {
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO(i << ": " << got[i] << " vs " << expected[i]);
      if (std::isnan(expected[i])) {
        CHECK(std::isnan(got[i]));
      } else {
        CHECK(std::bit_cast<std::uint32_t>(got[i]) == std::bit_cast<std::uint32_t>(expected[i]));  // -0 too
      }
    }
  };
  check(lmkit::io::to_floats(f.at("h")), f16_values);
  check(lmkit::io::to_floats(f.at("b")), bf16_values);
  std::vector<float> out(bf16_bits.size());
  lmkit::io::to_floats(f.at("b"), out);
  check(out, bf16_values);
  CHECK_THROWS_AS(lmkit::io::to_floats(f.at("h"), out), lmkit::shape_error);

  CHECK_FALSE(lmkit::io::f32_view(f.at("h")));
  REQUIRE_THROWS_AS(lmkit::io::to_floats(f.at("ids")), lmkit::format_error);
  CHECK_THROWS_WITH(lmkit::io::to_floats(f.at("ids")), Catch::Contains("tensor ids is I32"));
}

TEST_CASE("an F32 tensor that is not 4-byte aligned is copied, not viewed", "[safetensors]") {
  safetensors_writer w;
  const std::vector<float> values{1, 2, 3};
  w.add("x", {3}, values);
  std::string buffer = w.bytes();
  buffer.insert(0, 1, '?');  // one byte off the allocation's alignment
  const auto f = safetensors_file::parse_bytes(std::string_view(buffer).substr(1), "shifted");
  const auto& x = f.at("x");
  REQUIRE(reinterpret_cast<std::uintptr_t>(x.bytes.data()) % alignof(float) != 0);
  CHECK_FALSE(lmkit::io::f32_view(x));
  CHECK(lmkit::io::to_floats(x) == values);
}

TEST_CASE("damaged safetensors files are format errors naming the file and the tensor", "[safetensors][files]") {
  const std::string w = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  // The well-formed file these cases damage.
  CHECK(safetensors_file::parse_bytes(file_of("{" + w + "}", 8), "good").tensors().size() == 1);

  // The length and the JSON.
  expect_format_error("abc", "shorter than the 8-byte header length");
  expect_format_error(le64(200'000'000) + "{}", "header length 200000000 is beyond the 100000000-byte limit");
  expect_format_error(le64(~std::uint64_t(0)) + "{}", "is beyond the");
  expect_format_error(le64(100) + "{}", "header length 100 runs past the end of the file (10 bytes)");
  expect_format_error(file_of(R"({"w":)"), "header is not valid JSON");
  expect_format_error(file_of("{\"w\xFF\":{}}"), "header is not valid JSON");  // not UTF-8
  expect_format_error(file_of("[1, 2]"), "the header is JSON array, not an object");
  expect_format_error(file_of("{" + w + "," + w + "}", 8), "key \"w\" appears twice");
  expect_format_error(file_of(R"({"__metadata__":"pt"})"), "__metadata__ is string, not an object");
  expect_format_error(file_of(R"({"__metadata__":{"format":1}})"), "__metadata__ key format is number, not a string");

  // Each field of a tensor's entry.
  const auto entry = [](std::string_view fields, std::size_t data = 8, std::string_view name = "w") {
    return file_of("{\"" + std::string(name) + "\":" + std::string(fields) + "}", data);
  };
  expect_format_error(entry("5"), "tensor w: its entry is number, not an object");
  expect_format_error(entry(R"({"shape":[2],"data_offsets":[0,8]})"), "tensor w: no \"dtype\"");
  expect_format_error(entry(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), "tensor w: \"dtype\" is number");
  expect_format_error(entry(R"({"dtype":"F128","shape":[2],"data_offsets":[0,8]})"), "tensor w: unknown dtype F128");
  expect_format_error(entry(R"({"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]})"),
                      "key \"dtype\" appears twice");
  expect_format_error(entry(R"({"dtype":"F32","data_offsets":[0,8]})"), "tensor w: no \"shape\"");
  expect_format_error(entry(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), "tensor w: \"shape\" is number, not an array");
  expect_format_error(entry(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), "tensor w: \"shape\" holds -2");
  expect_format_error(entry(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), "tensor w: \"shape\" holds 2.0");
  expect_format_error(entry(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"), "tensor w: \"shape\" holds \"2\"");
  expect_format_error(entry(R"({"dtype":"F32","shape":[2]})"), "tensor w: no \"data_offsets\"");
  for (const std::string offsets : {"[0]", "[0,8,8]", "[-1,8]", R"(["0","8"])", "8", "[0,8.0]", "[0,18446744073709551616]"}) {
    const std::string needle = R"(tensor w: "data_offsets" is )";  // then the value, as JSON (a float written as such)
    expect_format_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}"), needle + offsets.substr(0, 3));
  }

  // Sizes and offsets.
  expect_format_error(entry(R"({"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]})"),
                      "tensor w: the product of shape [4294967296,4294967296,2] overflows 64 bits");
  expect_format_error(entry(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]})"),
                      "tensor w: shape [4611686018427387904] of F32 is more than 2^64 bytes");
  expect_format_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"),
                      "tensor w: data_offsets [8, 0] end before they begin");
  expect_format_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})"),
                      "tensor w: data_offsets [8, 16] run past the data section (8 bytes)");
  expect_format_error(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
                      "tensor w: data_offsets [0, 8] run past the data section (4 bytes)");
  expect_format_error(entry(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"),
                      "tensor w: data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12");
  expect_format_error(entry(R"({"dtype":"F16","shape":[2,0],"data_offsets":[0,8]})"), "hold 8 bytes, but shape [2,0] of F16 needs 0");

  // How the tensors lie in the data section.
  const auto two = [](std::string_view a_offsets, std::string_view b_offsets, std::size_t data) {
    return file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + std::string(a_offsets) +
                       R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + std::string(b_offsets) + "}}",
                   data);
  };
  CHECK(safetensors_file::parse_bytes(two("[8,16]", "[0,8]", 16), "good").tensors().size() == 2);  // any order
  expect_format_error(two("[0,8]", "[4,12]", 12), "tensor b (bytes 4 to 12) overlaps tensor a (which ends at byte 8)");
  expect_format_error(two("[0,8]", "[0,8]", 8), "overlaps tensor a");
  expect_format_error(two("[0,8]", "[12,20]", 20), "bytes 8 to 12 of the data section belong to no tensor (a gap before tensor b)");
  expect_format_error(two("[4,12]", "[12,20]", 20), "bytes 0 to 4 of the data section belong to no tensor (a gap before tensor a)");
  expect_format_error(two("[0,8]", "[8,16]", 20), "the last 4 bytes of the 20-byte data section belong to no tensor");
  expect_format_error(file_of("{}", 1), "the last 1 bytes");
  // An empty tensor may sit anywhere between others, but not inside one.
  const std::string with_empty =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"I8","shape":[0],"data_offsets":[OFFSET]}})";
  CHECK_NOTHROW(safetensors_file::parse_bytes(file_of(std::string(with_empty).replace(with_empty.find("OFFSET"), 6, "8,8"), 8), "e"));
  CHECK_NOTHROW(safetensors_file::parse_bytes(file_of(std::string(with_empty).replace(with_empty.find("OFFSET"), 6, "0,0"), 8), "e"));
  expect_format_error(file_of(std::string(with_empty).replace(with_empty.find("OFFSET"), 6, "4,4"), 8),
                      "tensor e (bytes 4 to 4) overlaps tensor a");

  // Cut anywhere: always a format_error.
  safetensors_writer writer;
  const std::vector<float> values{1, 2, 3};
  writer.add("x", {3}, values);
  const std::vector<float> more{4, 5};
  writer.add("y", {1, 2}, more);
  writer.add_metadata("format", "pt");
  const std::string good = writer.bytes();
  CHECK_NOTHROW(safetensors_file::parse_bytes(good, "good"));
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK_THROWS_AS(safetensors_file::parse_bytes(std::string_view(good).substr(0, cut), "cut"), lmkit::format_error);
  }
}

TEST_CASE("a sharded model: an index and two shards", "[safetensors][sharded]") {
  const auto dir = lmkit::test::temporary_folder("safetensors/sharded");
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  const std::vector<float> a{1, 2, 3, 4}, b{5, 6};
  const std::vector<std::uint16_t> c{0x3C00, 0xC000, 0x3800};  // F16 1, -2, 0.5
  {
    safetensors_writer w;
    w.add("model.a.weight", {2, 2}, a);
    w.add("model.b.weight", {2}, b);
    w.add_metadata("format", "pt");
    w.write(dir / shard1);
  }
  {
    safetensors_writer w;
    w.add("lm_head.weight", safetensors_dtype::f16, {3}, bytes_of(c));
    w.write(dir / shard2);
  }
  nlohmann::json index = {{"metadata", {{"total_size", 30}, {"format", "pt"}}},
                          {"weight_map", {{"model.a.weight", shard1}, {"model.b.weight", shard1}, {"lm_head.weight", shard2}}}};
  lmkit::write_file_atomically(dir / "model.safetensors.index.json", index.dump(2));

  const auto check = [&](const sharded_safetensors& m) {
    CHECK(m.size() == 3);
    CHECK(m.names() == std::vector<std::string>{"lm_head.weight", "model.a.weight", "model.b.weight"});
    CHECK(m.shards().size() == 2);
    CHECK(m.metadata().at("total_size") == "30");
    CHECK(m.metadata().at("format") == "pt");
    CHECK(m.shard_of("model.b.weight") == shard1);
    CHECK(m.shard_of("lm_head.weight") == shard2);
    CHECK(lmkit::io::to_floats(m.at("model.a.weight")) == a);
    CHECK(lmkit::io::to_floats(m.at("model.b.weight")) == b);
    CHECK(lmkit::io::to_floats(m.at("lm_head.weight")) == std::vector<float>{1.0f, -2.0f, 0.5f});
    CHECK(m.at("model.a.weight").shape == std::vector<std::uint64_t>{2, 2});
    CHECK(m.find("nope") == nullptr);
    REQUIRE_THROWS_AS(m.at("nope"), lmkit::format_error);
    CHECK_THROWS_WITH(m.at("nope"), Catch::Contains("model.safetensors.index.json: no tensor nope"));
  };
  check(sharded_safetensors::from_index(dir / "model.safetensors.index.json"));
  check(lmkit::io::open_safetensors(dir));
  check(lmkit::io::open_safetensors(dir / "model.safetensors.index.json"));
  const auto copy = lmkit::io::open_safetensors(dir);  // a copy's lookups stay valid
  const sharded_safetensors second = copy;
  check(second);

  // One file, opened as a model of one shard, or found in a folder.
  const auto one = lmkit::io::open_safetensors(dir / shard1);
  CHECK(one.size() == 2);
  CHECK(one.metadata().at("format") == "pt");
  CHECK(one.shard_of("model.a.weight") == shard1);
  const auto single_dir = lmkit::test::temporary_folder("safetensors/single");
  std::filesystem::copy_file(dir / shard1, single_dir / "model.safetensors", std::filesystem::copy_options::overwrite_existing);
  CHECK(lmkit::io::open_safetensors(single_dir).names() == std::vector<std::string>{"model.a.weight", "model.b.weight"});
  CHECK_THROWS_AS(lmkit::io::open_safetensors(lmkit::test::temporary_folder("safetensors/empty")), lmkit::io_error);

  // Damaged indexes.
  const auto bad_index = [&](const std::string& text) {
    const auto path = dir / "bad.index.json";
    lmkit::write_file_atomically(path, text);
    return path;
  };
  const auto expect_index_error = [&](const std::string& text, const std::string& needle) {
    INFO(text);
    const auto path = bad_index(text);
    REQUIRE_THROWS_AS(sharded_safetensors::from_index(path), lmkit::format_error);
    CHECK_THROWS_WITH(sharded_safetensors::from_index(path), Catch::Contains("bad.index.json: ") && Catch::Contains(needle));
  };
  expect_index_error(R"({"weight_map":{"model.a.weight":")" + shard1 + R"(","model.c.weight":")" + shard1 + R"("}})",
                     "tensor model.c.weight is listed in shard " + shard1 + ", which does not hold it");
  for (const char* escape : {"../model.safetensors", "sub/model.safetensors", "..", "", "a\\\\b.safetensors", "..\\\\x"})
    expect_index_error(R"({"weight_map":{"model.a.weight":")" + std::string(escape) + R"("}})",
                       "weight_map: tensor model.a.weight is in shard \"");
  expect_index_error(R"({"weight_map":{"model.a.weight":3}})", "tensor model.a.weight maps to number, not a file name");
  expect_index_error(R"({"metadata":{}})", "no \"weight_map\"");
  expect_index_error(R"({"weight_map":[]})", "\"weight_map\" is array, not an object");
  expect_index_error(R"({"metadata":[],"weight_map":{}})", "\"metadata\" is array, not an object");
  expect_index_error(R"({"weight_map":{"x":"a.safetensors","x":"b.safetensors"}})", "key \"x\" appears twice");
  expect_index_error("[]", "the index is JSON array, not an object");
  expect_index_error(R"({"weight_map":)", "index is not valid JSON");
  // A shard that is not there is the operating system's refusal.
  CHECK_THROWS_AS(sharded_safetensors::from_index(bad_index(R"({"weight_map":{"x":"missing.safetensors"}})")), lmkit::io_error);
}

TEST_CASE("the fixture models' safetensors files agree with their config.json", "[safetensors][fixtures]") {
  // fixtures/README.md: the Llama in Hugging Face names, F32; the GPT-2 in Hugging Face names, F16,
  // Conv1D layout [in, out], no lm_head (tied to wte).
  const auto fixtures = shared_data("fixtures");
  {
    const auto dir = fixtures / "shakespeare-llama/hf";
    const auto config = nlohmann::json::parse(lmkit::test::read_file(dir / "config.json"));
    const std::uint64_t dim = config["hidden_size"], hidden = config["intermediate_size"], vocab = config["vocab_size"];
    const std::uint64_t heads = config["num_attention_heads"], kv_heads = config["num_key_value_heads"];
    const std::uint64_t head_dim = config["head_dim"];
    const int layers = config["num_hidden_layers"];
    const auto model = lmkit::io::open_safetensors(dir);
    const auto& file = model.shards().at(0);
    CHECK(file.metadata().at("format") == "pt");
    std::map<std::string, std::vector<std::uint64_t>> expected{
        {"model.embed_tokens.weight", {vocab, dim}}, {"model.norm.weight", {dim}}, {"lm_head.weight", {vocab, dim}}};
    for (int l = 0; l < layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      expected[p + "input_layernorm.weight"] = {dim};
      expected[p + "post_attention_layernorm.weight"] = {dim};
      expected[p + "self_attn.q_proj.weight"] = {heads * head_dim, dim};
      expected[p + "self_attn.k_proj.weight"] = {kv_heads * head_dim, dim};
      expected[p + "self_attn.v_proj.weight"] = {kv_heads * head_dim, dim};
      expected[p + "self_attn.o_proj.weight"] = {dim, heads * head_dim};
      expected[p + "mlp.gate_proj.weight"] = {hidden, dim};
      expected[p + "mlp.up_proj.weight"] = {hidden, dim};
      expected[p + "mlp.down_proj.weight"] = {dim, hidden};
    }
    REQUIRE(file.tensors().size() == expected.size());
    for (const auto& t : file.tensors()) {
      INFO(t.name);
      REQUIRE(expected.contains(t.name));
      CHECK(t.shape == expected[t.name]);
      CHECK(t.dtype == safetensors_dtype::f32);
      CHECK(lmkit::io::f32_view(t));  // the mapping is page-aligned and the header padded
    }
    // The embedding's bytes equal those after the llama2.c checkpoint's 28-byte header.
    const std::string bin = lmkit::test::read_file(fixtures / "shakespeare-llama/shakespeare-llama.bin");
    const auto& embedding = model.at("model.embed_tokens.weight");
    REQUIRE(bin.size() >= 28 + embedding.bytes.size());
    CHECK(std::memcmp(embedding.bytes.data(), bin.data() + 28, embedding.bytes.size()) == 0);
  }
  {
    const auto dir = fixtures / "shakespeare-gpt2/hf";
    const auto config = nlohmann::json::parse(lmkit::test::read_file(dir / "config.json"));
    const std::uint64_t n = config["n_embd"], vocab = config["vocab_size"], positions = config["n_positions"];
    const std::uint64_t inner = config["n_inner"].is_null() ? 4 * n : config["n_inner"].get<std::uint64_t>();
    const int layers = config["n_layer"];
    const safetensors_file file(dir / "model.safetensors");
    std::map<std::string, std::vector<std::uint64_t>> expected{{"transformer.wte.weight", {vocab, n}},
                                                               {"transformer.wpe.weight", {positions, n}},
                                                               {"transformer.ln_f.weight", {n}},
                                                               {"transformer.ln_f.bias", {n}}};
    for (int l = 0; l < layers; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      for (const char* ln : {"ln_1", "ln_2"}) {
        expected[p + ln + ".weight"] = {n};
        expected[p + ln + ".bias"] = {n};
      }
      expected[p + "attn.c_attn.weight"] = {n, 3 * n};
      expected[p + "attn.c_attn.bias"] = {3 * n};
      expected[p + "attn.c_proj.weight"] = {n, n};
      expected[p + "attn.c_proj.bias"] = {n};
      expected[p + "mlp.c_fc.weight"] = {n, inner};
      expected[p + "mlp.c_fc.bias"] = {inner};
      expected[p + "mlp.c_proj.weight"] = {inner, n};
      expected[p + "mlp.c_proj.bias"] = {n};
    }
    REQUIRE(file.tensors().size() == expected.size());
    for (const auto& t : file.tensors()) {
      INFO(t.name);
      REQUIRE(expected.contains(t.name));
      CHECK(t.shape == expected[t.name]);
      CHECK(t.dtype == safetensors_dtype::f16);
    }
    CHECK_FALSE(file.contains("lm_head.weight"));
    // The scalar widening agrees with the SIMD kernel on every value of the embedding.
    const auto& wte = file.at("transformer.wte.weight");
    const auto widened = lmkit::io::to_floats(wte);
    std::vector<lmkit::f16> halves(widened.size());
    std::memcpy(halves.data(), wte.bytes.data(), wte.bytes.size());
    std::vector<float> by_kernel(widened.size());
    lmkit::kernels::convert(std::span<const lmkit::f16>(halves), std::span<float>(by_kernel));
    CHECK(std::memcmp(widened.data(), by_kernel.data(), widened.size() * sizeof(float)) == 0);
    CHECK(std::all_of(widened.begin(), widened.end(), [](float x) { return std::isfinite(x); }));
  }
}
