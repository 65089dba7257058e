// Hugging Face tokenizer.json files whose model is byte-level BPE (GPT-2, Llama 3, and the many
// models built the same way): the vocabulary and merges in GPT-2's printable spelling of bytes,
// a ByteLevel pre-tokenizer (GPT-2's pattern) or a Split on one of the patterns lmkit implements
// followed by ByteLevel, and the added tokens. Anything else in the pipeline (a normalizer, a
// Metaspace pre-tokenizer, WordPiece) is refused with the name of the part, not silently ignored.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lmkit/core/error.hpp"
#include "lmkit/core/atomic_file.hpp"
#include "lmkit/core/mapped_file.hpp"
#include "lmkit/text/bpe_tokenizer.hpp"
#include "lmkit/text/byte_unicode.hpp"

namespace lmkit::io {

namespace detail {

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
      specials.push_back({t["content"].get<std::string>(), text::token_id(id)});
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
    vocab.add(bytes, value);
  }

  std::vector<std::pair<text::token_id, text::token_id>> merges;
  if (!model.contains("merges") || !model["merges"].is_array()) fail("model.merges must be an array");
  for (std::size_t k = 0; k < model["merges"].size(); ++k) {
    const auto& m = model["merges"][k];
    std::string left, right;
    if (m.is_string()) {  // "left right"
      const std::string s = m.get<std::string>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) fail("merge ", k, " is not 'LEFT RIGHT'");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["left", "right"]
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail("merge ", k, " is neither 'LEFT RIGHT' nor [LEFT, RIGHT]");
    }
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

}  // namespace detail

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
