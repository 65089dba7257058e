// Hugging Face tokenizer.json files whose model is BPE:
// - byte-level (GPT-2, Llama 3, and the many models built the same way): the vocabulary and merges
//   in GPT-2's printable spelling of bytes, a ByteLevel pre-tokenizer (GPT-2's pattern) or a Split on
//   one of the patterns lmkit implements followed by ByteLevel, and the added tokens;
// - SentencePiece-style (Llama 1/2, Mistral): "▁" for spaces put in by a Prepend + Replace normalizer
//   or a Metaspace pre-tokenizer, <0xNN> byte fallback. Read as a sentencepiece_tokenizer whose
//   piece scores follow the merge list (the first merge making a piece ranks it).
// Anything else in the pipeline (other normalizers, WordPiece, Unigram) is refused with the name of
// the part, not silently ignored.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/error.hpp"
#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/any_tokenizer.hpp"
#include "lmkit/text/byte_unicode.hpp"
#include "lmkit/text/sentencepiece_tokenizer.hpp"

namespace lmkit::io {

namespace detail {

/// Merge `k` of a tokenizer.json, spelled "left right" or ["left", "right"]; nullopt if neither.
inline std::optional<std::pair<std::string, std::string>> merge_sides(const nlohmann::json& m) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const std::size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return std::nullopt;
    return std::pair{s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return std::pair{m[0].get<std::string>(), m[1].get<std::string>()};
  return std::nullopt;
}

inline text::bpe_tokenizer parse_hf_tokenizer_json(std::string_view json_text, std::string_view source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(source, ": not valid JSON: ", e.what()));
  }
  auto fail = [&](auto&&... why) { throw format_error(lmkit::detail::concat(source, ": ", why...)); };
  auto text_of = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
  // A boolean option: absent or null means `otherwise`.
  auto flag = [&](const nlohmann::json& object, const char* key, bool otherwise) {
    if (!object.is_object() || !object.contains(key) || object[key].is_null()) return otherwise;
    if (!object[key].is_boolean()) fail(key, " must be true or false");
    return object[key].get<bool>();
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail("no \"model\" object");
  const auto& model = j["model"];
  if (text_of(model.value("type", nlohmann::json())) != "BPE")
    fail("model type '", text_of(model.value("type", nlohmann::json())), "' is not BPE");
  for (const char* unsupported : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(unsupported) && !text_of(model[unsupported]).empty())
      fail("model.", unsupported, " is set; lmkit reads byte-level BPE without it");
  if (flag(model, "byte_fallback", false)) fail("model.byte_fallback is set: not a byte-level BPE file");
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    fail("normalizer '", j["normalizer"].is_object() ? text_of(j["normalizer"].value("type", nlohmann::json())) : "?",
         "' is not implemented");

  // The pre-tokenizer: ByteLevel with its regex, or Split(pattern) then ByteLevel without one.
  text::split_pattern pattern = text::split_pattern::gpt2;
  const auto& pre = j.value("pre_tokenizer", nlohmann::json());
  auto byte_level = [&](const nlohmann::json& p, bool regex_expected) {
    if (flag(p, "add_prefix_space", false)) fail("ByteLevel add_prefix_space=true is not implemented");
    if (flag(p, "use_regex", true) != regex_expected)
      fail("ByteLevel use_regex=", regex_expected ? "false" : "true", " in this position is not supported");
  };
  const std::string pre_type = pre.is_object() ? text_of(pre.value("type", nlohmann::json())) : "";
  if (pre_type == "ByteLevel") {
    byte_level(pre, true);
  } else if (pre_type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array() &&
             pre["pretokenizers"].size() == 2) {
    const auto& split = pre["pretokenizers"][0];
    if (!split.is_object() || text_of(split.value("type", nlohmann::json())) != "Split" || flag(split, "invert", false) ||
        text_of(split.value("behavior", nlohmann::json())) != "Isolated" || !split.contains("pattern") ||
        !split["pattern"].is_object() || !split["pattern"].contains("Regex"))
      fail("pre_tokenizer Sequence: expected Split(Regex, Isolated) then ByteLevel");
    const std::string regex = text_of(split["pattern"]["Regex"]);
    const auto known = text::split_pattern_from_regex(regex);
    if (!known) fail("pre-tokenising pattern ", regex, " is not one lmkit implements (gpt2, cl100k_base, o200k_base)");
    pattern = *known;
    if (!pre["pretokenizers"][1].is_object() || text_of(pre["pretokenizers"][1].value("type", nlohmann::json())) != "ByteLevel")
      fail("pre_tokenizer Sequence: expected ByteLevel after Split");
    byte_level(pre["pretokenizers"][1], false);
  } else {
    fail("pre_tokenizer '", pre_type.empty() ? "null" : pre_type, "' is not a byte-level one lmkit implements");
  }

  // Added tokens become special tokens: they are matched in the text before pre-tokenising.
  std::vector<text::special_token> specials;
  std::vector<bool> is_added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_unsigned() || !t.contains("content") ||
          !t["content"].is_string() || t["content"].get<std::string>().empty())
        fail("an added token needs an id and non-empty content");
      const auto id = t["id"].get<std::uint64_t>();
      if (id >= text::token_bytes_table::none) fail("added token id ", id, " is too large");
      if (t.value("single_word", false)) fail("added token ", id, ": single_word is not implemented");
      specials.push_back({t["content"].get<std::string>(), text::token_id(id), t.value("lstrip", false), t.value("rstrip", false)});
      if (id >= is_added.size()) is_added.resize(std::size_t(id) + 1, false);
      is_added[std::size_t(id)] = true;
    }
  }

  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab must be an object {token: id}");
  text::token_bytes_table vocab;
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned() || id.get<std::uint64_t>() >= text::token_bytes_table::none)
      fail("vocabulary token ", token, " needs a non-negative id");
    const auto value = text::token_id(id.get<std::uint64_t>());
    if (value < is_added.size() && is_added[value]) continue;  // an added token, kept as special
    const std::string bytes = text::printable_to_bytes(token, lmkit::detail::concat(source, ": vocabulary token ", value));
    if (vocab.find(bytes) != text::token_bytes_table::none || vocab.contains(value))
      fail("vocabulary token ", token, " (id ", value, ") repeats bytes or an id");
    try {
      vocab.add(bytes, value);
    } catch (const argument_error& e) {
      fail(e.what());
    }
  }

  std::vector<std::pair<text::token_id, text::token_id>> merges;
  if (!model.contains("merges") || !model["merges"].is_array()) fail("model.merges must be an array");
  for (std::size_t k = 0; k < model["merges"].size(); ++k) {
    const auto& m = model["merges"][k];
    const auto sides = merge_sides(m);
    if (!sides) fail("merge ", k, " is neither 'LEFT RIGHT' nor [LEFT, RIGHT]");
    const auto& [left, right] = *sides;
    auto id_of = [&](const std::string& printable) {
      const auto where = lmkit::detail::concat(source, ": merge ", k);
      const text::token_id id = vocab.find(text::printable_to_bytes(printable, where));
      if (id == text::token_bytes_table::none) fail("merge ", k, ": '", printable, "' is not in the vocabulary");
      return id;
    };
    merges.emplace_back(id_of(left), id_of(right));
  }
  try {
    return text::bpe_tokenizer(std::move(vocab), merges, pattern, std::move(specials), flag(model, "ignore_merges", false));
  } catch (const format_error& e) {
    throw format_error(lmkit::detail::concat(source, ": ", e.what()));
  }
}

/// Whether a tokenizer.json is SentencePiece-style: byte fallback, a Metaspace pre-tokenizer, or a
/// normalizer that prepends and substitutes "▁".
inline bool is_metaspace_style(const nlohmann::json& j) {
  const auto type_of = [](const nlohmann::json& v) {
    return v.is_object() && v.contains("type") && v["type"].is_string() ? v["type"].get<std::string>() : std::string();
  };
  if (j.contains("model") && j["model"].is_object() && j["model"].contains("byte_fallback") &&
      j["model"]["byte_fallback"].is_boolean() && j["model"]["byte_fallback"].get<bool>())
    return true;
  if (j.contains("pre_tokenizer") && type_of(j["pre_tokenizer"]) == "Metaspace") return true;
  if (j.contains("normalizer") && type_of(j["normalizer"]) == "Sequence" && j["normalizer"].contains("normalizers") &&
      j["normalizer"]["normalizers"].is_array())
    for (const auto& n : j["normalizer"]["normalizers"])
      if (type_of(n) == "Prepend" || type_of(n) == "Replace") return true;
  return false;
}

inline text::sentencepiece_tokenizer parse_metaspace_tokenizer_json(const nlohmann::json& j, std::string_view source) {
  auto fail = [&](auto&&... why) { throw format_error(lmkit::detail::concat(source, ": ", why...)); };
  const std::string space(text::sentencepiece_tokenizer::space_symbol);
  const auto type_of = [](const nlohmann::json& v) {
    return v.is_object() && v.contains("type") && v["type"].is_string() ? v["type"].get<std::string>() : std::string();
  };
  text::sentencepiece_options options;
  options.add_dummy_prefix = false;
  options.escape_whitespaces = false;
  // The normalizer: nothing, or Prepend("▁") and Replace(" ", "▁") in a Sequence.
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    const auto& n = j["normalizer"];
    if (type_of(n) != "Sequence" || !n.contains("normalizers") || !n["normalizers"].is_array())
      fail("normalizer '", type_of(n), "' is not implemented");
    for (const auto& step : n["normalizers"]) {
      if (type_of(step) == "Prepend" && step.value("prepend", std::string()) == space) {
        options.add_dummy_prefix = true;
      } else if (type_of(step) == "Replace" && step.contains("pattern") && step["pattern"].is_object() &&
                 step["pattern"].value("String", std::string()) == " " && step.value("content", std::string()) == space) {
        options.escape_whitespaces = true;
      } else {
        fail("normalizer step '", type_of(step), "' is not implemented");
      }
    }
  }
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    const auto& p = j["pre_tokenizer"];
    if (type_of(p) != "Metaspace") fail("pre_tokenizer '", type_of(p), "' is not implemented with byte fallback");
    if (p.value("replacement", space) != space) fail("Metaspace replacement must be \"▁\"");
    options.escape_whitespaces = true;
    const std::string scheme = p.contains("prepend_scheme") && p["prepend_scheme"].is_string()
                                   ? p["prepend_scheme"].get<std::string>()
                                   : (p.value("add_prefix_space", true) ? "always" : "never");
    options.add_dummy_prefix = scheme != "never";
    options.prefix_first_segment_only = scheme == "first";
    options.no_prefix_before_space = true;  // Metaspace prepends "▁" only to text not starting with one
    options.split_at_every_space = p.value("split", true);
  }
  const auto& model = j["model"];
  options.byte_fallback = model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
                          model["byte_fallback"].get<bool>();
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab must be an object {token: id}");
  std::vector<text::sentencepiece_piece> pieces(model["vocab"].size());
  std::vector<bool> seen(pieces.size(), false);
  std::unordered_map<std::string, text::token_id> id_of;
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned() || id.get<std::uint64_t>() >= pieces.size() || seen[id.get<std::size_t>()])
      fail("vocabulary token ", token, " needs an id below ", pieces.size(), " that no other token has");
    const auto k = id.get<std::size_t>();
    seen[k] = true;
    pieces[k] = {token, -1e9f, text::piece_type::normal};
    if (options.byte_fallback && token.size() == 6 && token.starts_with("<0x") && token.back() == '>')
      pieces[k].type = text::piece_type::byte;
    id_of.emplace(token, text::token_id(k));
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = id_of.find(model["unk_token"].get<std::string>());
    if (it == id_of.end()) fail("unk_token is not in the vocabulary");
    options.unk_id = it->second;
    pieces[it->second].type = text::piece_type::unknown;
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_unsigned() ||
          t["id"].get<std::uint64_t>() >= pieces.size() + (std::size_t(1) << 20))
        fail("an added token needs an id (at most 2^20 past the vocabulary)");
      const auto k = t["id"].get<std::size_t>();
      if (t.value("single_word", false)) fail("added token ", k, ": single_word is not implemented");
      const std::string content = t.value("content", std::string());
      if (content.empty()) fail("added token ", k, " has no content");
      text::require_utf8(content, lmkit::detail::concat(source, ": added token ", k));
      const bool special = t.value("special", false);
      if (k >= pieces.size()) {  // past the model's vocabulary (Phi-3's chat markers): a piece of its own
        pieces.resize(k + 1, {"", 0.0f, text::piece_type::unused});
        seen.resize(k + 1, false);
      }
      if (!seen[k]) {
        seen[k] = true;
        pieces[k] = {content, 0.0f, special ? text::piece_type::control : text::piece_type::user_defined};
        id_of.emplace(content, text::token_id(k));
      }
      // Hugging Face finds every added token first: a special one is a control piece here (found on
      // request), another a user-defined one (found always, as there).
      if (pieces[k].type == text::piece_type::normal)
        pieces[k].type = special ? text::piece_type::control : text::piece_type::user_defined;
      options.added_tokens.push_back({content, text::token_id(k), t.value("lstrip", false), t.value("rstrip", false)});
      if (pieces[k].text == "<s>") options.bos_id = text::token_id(k);
      if (pieces[k].text == "</s>") options.eos_id = text::token_id(k);
    }
  }
  for (std::size_t k = 0; k < pieces.size(); ++k)
    if (!seen[k]) fail("token id ", k, " is neither in the vocabulary nor an added token");
  if (!model.contains("merges") || !model["merges"].is_array()) fail("model.merges must be an array");
  const auto& merges = model["merges"];
  for (std::size_t k = 0; k < merges.size(); ++k) {
    const auto sides = merge_sides(merges[k]);
    if (!sides) fail("merge ", k, " is neither 'LEFT RIGHT' nor [LEFT, RIGHT]");
    const auto& [left, right] = *sides;
    if (!id_of.contains(left) || !id_of.contains(right)) fail("merge ", k, " names a token that is not in the vocabulary");
    const auto it = id_of.find(left + right);
    if (it == id_of.end()) fail("merge ", k, " makes a token that is not in the vocabulary");
    auto& piece = pieces[it->second];
    piece.score = std::max(piece.score, -float(k));  // the first merge making a piece ranks it
  }
  try {
    return text::sentencepiece_tokenizer(std::move(pieces), options);
  } catch (const format_error& e) {
    fail(e.what());
  }
  throw std::logic_error("unreachable");
}

}  // namespace detail

/// The tokenizer a tokenizer.json describes: byte-level BPE or SentencePiece-style BPE.
inline text::any_tokenizer parse_hf_tokenizer(std::string_view json_text, std::string_view source) {
  try {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::parse_error& e) {
      throw format_error(lmkit::detail::concat(source, ": not valid JSON: ", e.what()));
    }
    if (j.is_object() && j.contains("model") && j["model"].is_object() && detail::is_metaspace_style(j)) {
      if (!j["model"].contains("type") || j["model"]["type"] != "BPE")
        throw format_error(lmkit::detail::concat(source, ": model type is not BPE"));
      return detail::parse_metaspace_tokenizer_json(j, source);
    }
    return detail::parse_hf_tokenizer_json(json_text, source);
  } catch (const nlohmann::json::exception& e) {
    throw format_error(lmkit::detail::concat(source, ": unexpected JSON: ", e.what()));
  }
}

inline text::any_tokenizer read_hf_tokenizer(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_hf_tokenizer({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

/// A byte-level BPE tokenizer from a tokenizer.json; `source` names it in errors.
inline text::bpe_tokenizer parse_hf_tokenizer_json(std::string_view json_text, std::string_view source) {
  try {
    return detail::parse_hf_tokenizer_json(json_text, source);
  } catch (const nlohmann::json::exception& e) {  // a value of the wrong JSON type somewhere
    throw format_error(lmkit::detail::concat(source, ": unexpected JSON: ", e.what()));
  }
}

/// Writes a byte-level BPE tokenizer.json (Split on `pattern`, then ByteLevel; the merges in order;
/// `specials` as added tokens), atomically. `token_bytes` is indexed by id.
inline void write_hf_tokenizer_json(const std::filesystem::path& path, const std::vector<std::string>& token_bytes,
                                    std::span<const std::pair<text::token_id, text::token_id>> merges,
                                    text::split_pattern pattern, const std::vector<text::special_token>& specials = {}) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (std::size_t id = 0; id < token_bytes.size(); ++id) vocab[text::bytes_to_printable(token_bytes[id])] = id;
  nlohmann::ordered_json merge_list = nlohmann::ordered_json::array();
  for (const auto& [left, right] : merges)
    merge_list.push_back(text::bytes_to_printable(token_bytes.at(left)) + " " + text::bytes_to_printable(token_bytes.at(right)));
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (const auto& s : specials)
    added.push_back({{"id", s.id}, {"content", s.text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  nlohmann::ordered_json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", std::string(text::regex_of(pattern))}}}, {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merge_list}}}};
  write_file_atomically(path, j.dump(1));
}

inline text::bpe_tokenizer read_hf_tokenizer_json(const std::filesystem::path& path) {
  const mapped_file file(path);
  return parse_hf_tokenizer_json({reinterpret_cast<const char*>(file.data()), file.size()}, path.string());
}

}  // namespace lmkit::io
