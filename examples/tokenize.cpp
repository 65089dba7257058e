// tokenize: encode a file with a tiktoken encoding or GPT-2's own files, and show the ids, the
// counts, or check that decoding gives the file back.
//
//   tokenize --encoding cl100k_base FILE                   ids, space-separated
//   tokenize --encoding o200k_base --count FILE            tokens, bytes, bytes per token, MB/s
//   tokenize --encoding gpt2 --roundtrip FILE              decode(encode(FILE)) == FILE ?
//   tokenize --gpt2 encoder.json vocab.bpe FILE            GPT-2's files instead of a rank file
//   tokenize --encoding cl100k_base --decode IDS_FILE      ids (whitespace-separated) back to text
//   tokenize --sentencepiece tokenizer.model FILE          a SentencePiece BPE model (Llama family)
//   tokenize --llama2c tokenizer.bin FILE                  llama2.c's tokenizer file
//   tokenize --hf tokenizer.json FILE                      a Hugging Face byte-level BPE tokenizer
//   tokenize --gguf model.gguf FILE                        the tokenizer a GGUF model file carries
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <variant>

#include <lmkit/io/gguf_tokenizer.hpp>
#include <lmkit/io/gpt2_bpe.hpp>
#include <lmkit/io/hf_tokenizer.hpp>
#include <lmkit/io/llama2c_tokenizer.hpp>
#include <lmkit/io/sentencepiece_model.hpp>
#include <lmkit/io/tiktoken.hpp>

#include "cli_main.hpp"

namespace {

using namespace lmkit;

int usage(int code) {
  std::fputs(
      "usage: tokenize (--encoding NAME [--ranks FILE] | --gpt2 ENCODER_JSON VOCAB_BPE |\n"
      "                 --sentencepiece MODEL | --llama2c TOKENIZER_BIN | --hf TOKENIZER_JSON | --gguf MODEL_GGUF)\n"
      "                [--count | --roundtrip | --decode] [--allow-special] FILE|-\n"
      "  --encoding NAME   gpt2 (r50k_base), cl100k_base or o200k_base. Its rank file is --ranks FILE, or\n"
      "                    NAME.tiktoken in $LMKIT_TOKENIZER_DIR or in the current folder.\n"
      "  --gpt2 E V        GPT-2's encoder.json and vocab.bpe; --hf T: a Hugging Face BPE tokenizer.json.\n"
      "  --sentencepiece M a SentencePiece BPE .model (Llama family); --llama2c T: llama2.c's tokenizer.bin.\n"
      "                    Their ids start with BOS when --allow-special is given. --gguf M: a GGUF's tokenizer.\n"
      "  (default)         print the ids, space-separated, one line for the whole file\n"
      "  --count           print the number of tokens and bytes, and the encoding speed\n"
      "  --roundtrip       check that decoding the ids gives the file back (exit 1 if not)\n"
      "  --decode          read whitespace-separated ids and write the bytes they stand for\n"
      "  --allow-special   special tokens' text (e.g. <|endoftext|>; a SentencePiece-style tokenizer.json's\n"
      "                    added tokens, e.g. <s>) becomes their ids; without it, such text is encoded as\n"
      "                    ordinary text\n",
      code == 0 ? stdout : stderr);
  return code;
}

std::string read_input(const std::string& path) {
  std::ostringstream s;
  if (path == "-") {
    s << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    require<io_error>(bool(in), "cannot read ", path);
    s << in.rdbuf();
  }
  return s.str();
}

std::filesystem::path find_rank_file(const std::string& encoding) {
  const std::string name = encoding + ".tiktoken";
  std::vector<std::filesystem::path> tried;
  if (const char* dir = std::getenv("LMKIT_TOKENIZER_DIR"); dir && *dir) tried.push_back(std::filesystem::path(dir) / name);
  tried.push_back(name);
  for (const auto& p : tried)
    if (std::filesystem::exists(p)) return p;
  std::string where;
  for (const auto& p : tried) {
    where += ' ';
    where += p.string();
  }
  throw io_error("no rank file for " + encoding + " (looked at" + where + "); give one with --ranks FILE");
}

template <class Tokenizer>
int run_mode(const Tokenizer& tok, const std::string& mode, const std::string& data, bool allow_special) {
  if (mode == "decode") {
    std::istringstream in(data);
    std::vector<text::token_id> ids;
    std::string word;
    while (in >> word) {
      char* end = nullptr;
      const unsigned long v = std::strtoul(word.c_str(), &end, 10);
      require<argument_error>(*end == '\0' && v <= 0xFFFFFFFEul, "'", word, "' is not a token id");
      ids.push_back(text::token_id(v));
    }
    const std::string bytes = tok.decode(ids);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return 0;
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<text::token_id> ids;
  if constexpr (std::is_same_v<Tokenizer, text::bpe_tokenizer>)
    ids = allow_special ? tok.encode(data, text::allowed_special::all()) : tok.encode_ordinary(data);
  else
    ids = tok.encode(data, {.add_bos = allow_special, .match_added_tokens = allow_special});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (mode == "count") {
    std::printf("%zu tokens, %zu bytes, %.3f bytes per token, %.1f MB/s\n", ids.size(), data.size(),
                ids.empty() ? 0.0 : double(data.size()) / double(ids.size()), double(data.size()) / 1e6 / seconds);
  } else if (mode == "roundtrip") {
    const bool same = tok.decode(ids) == data;
    std::printf("%s: %zu tokens, %zu bytes\n", same ? "round trip ok" : "ROUND TRIP DIFFERS", ids.size(), data.size());
    return same ? 0 : 1;
  } else {
    std::string line;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      if (k) line += ' ';
      line += std::to_string(ids[k]);
    }
    std::puts(line.c_str());
  }
  return 0;
}

int run(int argc, char** argv) {
  std::string encoding, ranks, mode = "ids", input;
  std::optional<std::pair<std::string, std::string>> gpt2_files;
  std::string sentencepiece, llama2c, hf, gguf;
  bool allow_special = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(0);
    if (a == "--encoding" && i + 1 < argc) encoding = argv[++i];
    else if (a == "--ranks" && i + 1 < argc) ranks = argv[++i];
    else if (a == "--gpt2" && i + 2 < argc) gpt2_files = {argv[i + 1], argv[i + 2]}, i += 2;
    else if (a == "--sentencepiece" && i + 1 < argc) sentencepiece = argv[++i];
    else if (a == "--llama2c" && i + 1 < argc) llama2c = argv[++i];
    else if (a == "--hf" && i + 1 < argc) hf = argv[++i];
    else if (a == "--gguf" && i + 1 < argc) gguf = argv[++i];
    else if (a == "--count" || a == "--roundtrip" || a == "--decode") mode = a.substr(2);
    else if (a == "--allow-special") allow_special = true;
    else if (input.empty() && (a == "-" || a[0] != '-')) input = a;
    else return usage(2);
  }
  const int sources = !encoding.empty() + bool(gpt2_files) + !sentencepiece.empty() + !llama2c.empty() + !hf.empty() + !gguf.empty();
  if (input.empty() || sources != 1) return usage(2);

  using text::any_tokenizer;  // a SentencePiece or a byte-level BPE tokenizer
  const any_tokenizer tokenizer =
      gpt2_files              ? any_tokenizer(io::read_gpt2_bpe(gpt2_files->first, gpt2_files->second))
      : !sentencepiece.empty() ? any_tokenizer(io::read_sentencepiece_model(sentencepiece))
      : !llama2c.empty()       ? any_tokenizer(io::read_llama2c_tokenizer(llama2c))
      : !hf.empty()            ? io::read_hf_tokenizer(hf)
      : !gguf.empty()          ? io::tokenizer_from_gguf(io::gguf_file(gguf))
                               : any_tokenizer(io::load_tiktoken(
                                     ranks.empty() ? find_rank_file(encoding) : std::filesystem::path(ranks), encoding));
  const std::string data = read_input(input);
  return std::visit([&](const auto& tok) { return run_mode(tok, mode, data, allow_special); }, tokenizer);
}

}  // namespace

int main(int argc, char** argv) { return lmkit::cli::run_tool("tokenize", run, argc, argv); }
