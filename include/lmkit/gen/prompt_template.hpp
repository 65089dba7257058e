// Zero-, one- and few-shot prompts: an instruction, k worked examples (input, output), and the
// query, laid out the same way each time so that the model continues the pattern.
//
//   gen::few_shot_prompt p{.instruction = "Decide whether each review is positive or negative.",
//                          .examples = {{"Lovely food.", "positive"}}};
//   std::string text = p.render("The soup was cold.");
//   // "Decide whether each review is positive or negative.\n\nReview: Lovely food.\nSentiment: positive\n\n"
//   // "Review: The soup was cold.\nSentiment:"
//
// The text ends right after the output prefix, with no trailing space: the answer's own leading
// space belongs to the answer (" positive"), as most tokenizers attach spaces to the next word.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmkit::gen {

struct few_shot_prompt {
  std::string instruction{};                                      // empty: none
  std::vector<std::pair<std::string, std::string>> examples{};   // (input, output); none = zero-shot
  std::string input_prefix = "Review: ";
  std::string output_prefix = "\nSentiment:";
  std::string separator = "\n\n";                                // after the instruction and each example

  /// The prompt for `query`; the model's continuation is the answer.
  std::string render(std::string_view query) const {
    std::string out;
    if (!instruction.empty()) out += instruction + separator;
    for (const auto& [input, output] : examples) {
      out += input_prefix;
      out += input;
      out += output_prefix;
      out += ' ';
      out += output;
      out += separator;
    }
    out += input_prefix;
    out += query;
    out += output_prefix;
    return out;
  }
};

}  // namespace lmkit::gen
