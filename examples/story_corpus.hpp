// A corpus the project writes itself, for the demo: short sentences from a small grammar (people,
// meals, foods, animals, places, times), drawn with a seeded generator and Zipf-like preferences,
// so that some continuations are far likelier than others ("after lunch came pizza, most often").
// Every model family has regularities to find in it: which word follows which, agreement across
// a sentence, punctuation and line ends.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <lmkit/core/rng.hpp>

namespace demo {

namespace detail {
using words = std::vector<std::string_view>;

/// Word i is chosen with weight 1 / (i + 1): the first of each list is the commonest.
inline std::string_view pick(lmkit::philox& rng, const words& w) {
  double total = 0;
  for (std::size_t i = 0; i < w.size(); ++i) total += 1.0 / static_cast<double>(i + 1);
  double u = rng.uniform_double() * total;
  for (std::size_t i = 0; i < w.size(); ++i)
    if ((u -= 1.0 / static_cast<double>(i + 1)) < 0) return w[i];
  return w.back();
}
}  // namespace detail

/// About `bytes` bytes of sentences, one per line.
inline std::string story_corpus(std::size_t bytes, std::uint64_t seed_value = 7) {
  using detail::pick;
  const detail::words people = {"Anna", "Tom", "the teacher", "my sister", "the old man", "Mia", "the baker", "Sam"};
  const detail::words meals = {"lunch", "breakfast", "dinner", "school", "the game", "work"};
  const detail::words foods = {"pizza", "soup", "bread", "apples", "rice", "cake", "fish", "noodles"};
  const detail::words animals = {"cat", "dog", "bird", "horse", "fox", "duck"};
  const detail::words colours = {"black", "little", "brown", "white", "quick", "lazy"};
  const detail::words places = {"the garden", "the river", "the market", "the hill", "the kitchen", "the park"};
  const detail::words moves = {"ran to", "walked to", "jumped over", "looked at", "slept in", "sang near"};
  const detail::words times = {"in the morning", "at night", "on Sunday", "every day", "after the rain"};
  const detail::words feelings = {"happy", "hungry", "tired", "sleepy", "glad", "quiet"};
  lmkit::philox rng(lmkit::seed{seed_value});
  std::string out;
  while (out.size() < bytes) {
    std::string line;
    switch (rng() % 6) {
      case 0: line = "After " + std::string(pick(rng, meals)) + " came " + std::string(pick(rng, foods)) + "."; break;
      case 1:
        line = std::string(pick(rng, people)) + " ate " + std::string(pick(rng, foods)) + " after " +
               std::string(pick(rng, meals)) + ".";
        break;
      case 2:
        line = "The " + std::string(pick(rng, colours)) + " " + std::string(pick(rng, animals)) + " " +
               std::string(pick(rng, moves)) + " " + std::string(pick(rng, places)) + " " + std::string(pick(rng, times)) + ".";
        break;
      case 3:
        line = std::string(pick(rng, people)) + " was " + std::string(pick(rng, feelings)) + " " +
               std::string(pick(rng, times)) + ".";
        break;
      case 4:
        line = std::string(pick(rng, people)) + " said that the " + std::string(pick(rng, animals)) + " was " +
               std::string(pick(rng, feelings)) + ".";
        break;
      default:
        line = "Every " + std::string(pick(rng, animals)) + " likes " + std::string(pick(rng, foods)) + " " +
               std::string(pick(rng, times)) + ".";
    }
    if (line[0] >= 'a' && line[0] <= 'z') line[0] = static_cast<char>(line[0] - 'a' + 'A');
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace demo
