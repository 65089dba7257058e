// Chat templates: a conversation (system, user, assistant messages) as the text a chat model was
// trained on. Two formats are written out here:
//
//   ChatML (Qwen, many fine-tunes):   <|im_start|>system\n...<|im_end|>\n<|im_start|>user\n...<|im_end|>\n
//                                     <|im_start|>assistant\n
//   Llama 2 chat:                     <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST]
//
// A GGUF's `tokenizer.chat_template` is a Jinja program; recognise_chat_template() names the format
// when the program is recognisably one of these (it writes <|im_start|>, or [INST] with <<SYS>> or
// without) and throws lmkit::argument_error quoting its start otherwise: lmkit has no Jinja
// interpreter, and a guessed format would silently degrade a chat model.
//
// The markers are text: a tokenizer that maps them to their special ids (tiktoken-style with
// allowed specials, a Hugging Face tokenizer.json with its added tokens matched) gets the ids; a
// SentencePiece .model encodes "<s>" as characters, so for Llama 2 from a .model set bos = "" and
// put the BOS id in front yourself.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lmkit/core/error.hpp"
#include "lmkit/io/gguf.hpp"

namespace lmkit::gen {

enum class chat_format { chatml, llama2 };

struct chat_message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct chat_template_options {
  bool add_generation_prompt = true;  // end with the opening of the assistant's turn
  std::string bos = "<s>";            // Llama 2's markers (text)
  std::string eos = "</s>";
};

namespace detail {

inline void check_role(const chat_message& m, std::size_t i) {
  require<argument_error>(m.role == "system" || m.role == "user" || m.role == "assistant", "chat template: message ", i,
                          " has role '", m.role, "' (expected system, user or assistant)");
}

inline std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\n\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace detail

inline std::string apply_chat_template(chat_format format, std::span<const chat_message> messages,
                                       const chat_template_options& o = {}) {
  require<argument_error>(!messages.empty(), "chat template: no messages");
  for (std::size_t i = 0; i < messages.size(); ++i) detail::check_role(messages[i], i);
  std::string out;
  if (format == chat_format::chatml) {
    for (const chat_message& m : messages) {
      out += "<|im_start|>";
      out += m.role;
      out += '\n';
      out += m.content;
      out += "<|im_end|>\n";
    }
    if (o.add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }
  // Llama 2 (Meta's reference / HF's template): the system message goes inside the first [INST];
  // user and assistant alternate, starting with the user.
  std::size_t first = 0;
  std::string system;
  if (messages[0].role == "system") {
    system = "<<SYS>>\n";  // (piece by piece: g++ 12 warns falsely on "literal" + std::string)
    system += detail::trim(messages[0].content);
    system += "\n<</SYS>>\n\n";
    first = 1;
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const chat_message& m = messages[i];
    const bool user_turn = (i - first) % 2 == 0;
    require<argument_error>(m.role == (user_turn ? "user" : "assistant"), "chat template (llama2): message ", i, " is '",
                            m.role, "' where the turns call for '", user_turn ? "user" : "assistant",
                            "' (system first, then user and assistant alternating)");
    if (user_turn) {
      out += o.bos;
      out += "[INST] ";
      if (i == first) out += system;
      out += detail::trim(m.content);
      out += " [/INST]";
    } else {
      out += ' ';
      out += detail::trim(m.content);
      out += ' ';
      out += o.eos;
    }
  }
  return out;  // ends after [/INST] when the last message is the user's: the assistant's turn follows
}

inline std::string apply_chat_template(chat_format format, std::initializer_list<chat_message> messages,
                                       const chat_template_options& o = {}) {
  return apply_chat_template(format, std::span<const chat_message>(messages.begin(), messages.size()), o);
}

/// The format a Jinja chat template writes, or argument_error naming the template.
inline chat_format recognise_chat_template(std::string_view jinja) {
  if (jinja.find("<|im_start|>") != std::string_view::npos && jinja.find("<|im_end|>") != std::string_view::npos)
    return chat_format::chatml;
  if (jinja.find("[INST]") != std::string_view::npos && jinja.find("[/INST]") != std::string_view::npos)
    return chat_format::llama2;
  std::string start(jinja.substr(0, 80));
  for (char& c : start)
    if (c == '\n') c = ' ';
  throw argument_error(lmkit::detail::concat("chat template not recognised (lmkit knows ChatML and Llama 2): \"", start,
                                      jinja.size() > 80 ? "...\"" : "\""));
}

/// The format named by a GGUF file's tokenizer.chat_template.
inline chat_format chat_format_of(const io::gguf_file& file, std::string_view name = "model") {
  require<argument_error>(file.contains("tokenizer.chat_template"), name, " has no tokenizer.chat_template key");
  return recognise_chat_template(file.get_string("tokenizer.chat_template"));
}

}  // namespace lmkit::gen
