// quantize: a GGUF model with its weight matrices in Q8_0 or Q4_0.
//
//   quantize IN.gguf OUT.gguf --type q8_0|q4_0
//
// Every tensor of two or more dimensions whose rows are whole blocks of 32 is quantised (from f32,
// f16 or bf16) with ggml's reference rounding, so llama.cpp reads the file as it reads its own;
// vectors (norms, biases) stay f32, as llama.cpp keeps them. Unlike llama-quantize's default, the
// output layer gets the same type as the rest (its `--pure`): lmkit has no Q6_K. Metadata is copied,
// general.file_type updated. The file is written atomically.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <lmkit/core/weight_matrix.hpp>
#include <lmkit/io/gguf.hpp>
#include <lmkit/io/gguf_writer.hpp>
#include <lmkit/kernels/kernels.hpp>

#include "cli_main.hpp"

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs("usage: quantize IN.gguf OUT.gguf --type q8_0|q4_0\n"
             "  Quantises the weight matrices of a GGUF model (f32/f16/bf16) to Q8_0 or Q4_0; vectors stay f32.\n",
             code == 0 ? stdout : stderr);
  return code;
}

/// The tensor's values widened to f32.
std::vector<float> widen(const io::gguf_file& f, const io::gguf_tensor_info& t) {
  const auto bytes = f.tensor_bytes(t);
  std::vector<float> out(t.elements());
  switch (t.type) {
    case io::ggml_type::f32: std::memcpy(out.data(), bytes.data(), out.size() * 4); break;
    case io::ggml_type::f16:
    case io::ggml_type::bf16:
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, bytes.data() + 2 * i, 2);
        out[i] = t.type == io::ggml_type::f16 ? std::bit_cast<f16>(bits).to_float() : std::bit_cast<bf16>(bits).to_float();
      }
      break;
    default: throw format_error(detail::concat(f.source(), ": tensor ", t.name, " is already quantised"));
  }
  return out;
}

int run(int argc, char** argv) {
  std::vector<std::string> files;
  std::string type;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(0);
    if (a == "--type" && i + 1 < argc) type = argv[++i];
    else files.push_back(a);
  }
  if (files.size() != 2 || (type != "q8_0" && type != "q4_0")) return usage(2);
  const io::gguf_file in(files[0]);
  const bool q8 = type == "q8_0";
  io::gguf_writer out;
  for (const auto& [key, value] : in.metadata())
    if (key != "general.file_type" && key != "general.alignment") out.add(key, value);
  out.add_uint32("general.file_type", q8 ? 7 : 2);  // llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0 / _Q4_0
  std::size_t quantised = 0, bytes_in = 0, bytes_out = 0;
  for (const auto& t : in.tensors()) {
    const auto bytes = in.tensor_bytes(t);
    bytes_in += bytes.size();
    const bool matrix = t.dims.size() >= 2 && t.dims[0] % quant_block_size == 0;
    const bool floats = t.type == io::ggml_type::f32 || t.type == io::ggml_type::f16 || t.type == io::ggml_type::bf16;
    if (matrix && floats) {
      const std::vector<float> values = widen(in, t);
      std::vector<std::byte> packed;
      if (q8) {
        std::vector<block_q8_0> blocks(values.size() / quant_block_size);
        kernels::quantize_q8_0(values, blocks);
        packed.resize(blocks.size() * sizeof(block_q8_0));
        std::memcpy(packed.data(), blocks.data(), packed.size());
      } else {
        std::vector<block_q4_0> blocks(values.size() / quant_block_size);
        kernels::quantize_q4_0(values, blocks);
        packed.resize(blocks.size() * sizeof(block_q4_0));
        std::memcpy(packed.data(), blocks.data(), packed.size());
      }
      bytes_out += packed.size();
      out.add_tensor(t.name, t.dims, q8 ? io::ggml_type::q8_0 : io::ggml_type::q4_0, packed);
      ++quantised;
    } else if (t.dims.size() < 2 && (t.type == io::ggml_type::f16 || t.type == io::ggml_type::bf16)) {
      const std::vector<float> values = widen(in, t);  // vectors as f32, as llama.cpp keeps them
      bytes_out += values.size() * 4;
      out.add_tensor(t.name, t.dims, io::ggml_type::f32, std::as_bytes(std::span<const float>(values)));
    } else {
      bytes_out += bytes.size();
      out.add_tensor(t.name, t.dims, t.type, bytes);
    }
  }
  out.write(files[1]);
  std::fprintf(stderr, "quantize: %zu of %zu tensors to %s, %.1f MB -> %.1f MB, written to %s\n", quantised,
               in.tensors().size(), type.c_str(), bytes_in / 1e6, bytes_out / 1e6, files[1].c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("quantize", run, argc, argv); }
