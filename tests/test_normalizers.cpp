// Normalisers (NFC, NFKC, case folding, accent stripping, white space), their compile-time chain,
// and the Porter stemmer against the examples in Porter's paper.
#include <catch2/catch.hpp>

#include "lmkit/text/normalizer.hpp"
#include "lmkit/text/porter_stemmer.hpp"

using namespace lmkit::text;

TEST_CASE("Unicode normal forms, case folding and accents", "[normalizer]") {
  CHECK(nfc{}("e\xCC\x81") == "\xC3\xA9");                                  // e + combining acute -> é
  CHECK(nfc{}("\xEF\xAC\x81") == "\xEF\xAC\x81");                           // the fi ligature stays in NFC
  CHECK(nfkc{}("\xEF\xAC\x81") == "fi");                                    // ... and becomes "fi" in NFKC
  CHECK(nfkc{}("\xEF\xBC\xA1\xE2\x91\xA0") == "A1");                        // full-width A, circled 1
  CHECK(case_fold{}("Stra\xC3\x9F" "e STRASSE") == "strasse strasse");      // ß folds to ss
  CHECK(case_fold{}("\xCE\xA3\xCE\x91\xCE\xA3") == "\xCF\x83\xCE\xB1\xCF\x83");  // ΣΑΣ -> σασ
  CHECK(strip_accents{}("caf\xC3\xA9 na\xC3\xAFve \xC3\x85ngstr\xC3\xB6m") == "cafe naive Angstrom");
  CHECK(strip_accents{}("\xED\x95\x9C\xEA\xB5\xAD") == "\xED\x95\x9C\xEA\xB5\xAD");  // Hangul survives NFD and back
  CHECK(strip_accents{}("\xE0\xA4\x95\xE0\xA4\xBE") == "\xE0\xA4\x95\xE0\xA4\xBE");  // Devanagari Mc kept
  CHECK(clean_whitespace{}("  a \t\n b\xE3\x80\x80" "c  ") == "a b c");
  CHECK(clean_whitespace{.keep_newlines = true}(" a \n\n b  c\n") == "a\nb c");
  for (const auto* bad : {"\xC3", "\xED\xA0\x80", "a\xFF"}) {
    CHECK_THROWS_AS(nfc{}(bad), lmkit::format_error);
    CHECK_THROWS_AS(case_fold{}(bad), lmkit::format_error);
    CHECK_THROWS_AS(strip_accents{}(bad), lmkit::format_error);
    CHECK_THROWS_AS(clean_whitespace{}(bad), lmkit::format_error);
  }
  CHECK(nfc{}(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("a chain applies its steps in order", "[normalizer]") {
  constexpr normalizer_chain<nfkc, case_fold, strip_accents, clean_whitespace> normalize{};
  CHECK(normalize("  \xEF\xBC\xA3\xEF\xBD\x81\xEF\xBD\x86\xC3\xA9  \xEF\xBC\xB4\xEF\xBC\xA5\xEF\xBC\xB3\xEF\xBC\xB4 ") ==
        "cafe test");
  const normalizer_chain<case_fold, porter_stem> stem_words{};
  CHECK(stem_words("Generalizations of the Oscillators, connected and CONNECTING!") ==
        "gener of the oscil, connect and connect!");
  static_assert(text_normalizer<normalizer_chain<nfc, clean_whitespace>>);
  static_assert(!text_normalizer<int>);
}

TEST_CASE("Porter stemmer: the examples of Porter's paper", "[normalizer][porter]") {
  const std::pair<const char*, const char*> examples[] = {
      {"caresses", "caress"}, {"ponies", "poni"}, {"ties", "ti"}, {"caress", "caress"}, {"cats", "cat"},
      {"feed", "feed"}, {"agreed", "agre"}, {"plastered", "plaster"}, {"bled", "bled"}, {"motoring", "motor"},
      {"sing", "sing"}, {"conflated", "conflat"}, {"troubled", "troubl"}, {"sized", "size"}, {"hopping", "hop"},
      {"tanned", "tan"}, {"falling", "fall"}, {"hissing", "hiss"}, {"fizzed", "fizz"}, {"failing", "fail"},
      {"filing", "file"}, {"happy", "happi"}, {"sky", "sky"}, {"relational", "relat"}, {"conditional", "condit"},
      {"rational", "ration"}, {"valenci", "valenc"}, {"hesitanci", "hesit"}, {"digitizer", "digit"},
      {"conformabli", "conform"}, {"radicalli", "radic"}, {"differentli", "differ"}, {"vileli", "vile"},
      {"analogousli", "analog"}, {"vietnamization", "vietnam"}, {"predication", "predic"}, {"operator", "oper"},
      {"feudalism", "feudal"}, {"decisiveness", "decis"}, {"hopefulness", "hope"}, {"callousness", "callous"},
      {"formaliti", "formal"}, {"sensitiviti", "sensit"}, {"sensibiliti", "sensibl"}, {"triplicate", "triplic"},
      {"formative", "form"}, {"formalize", "formal"}, {"electriciti", "electr"}, {"electrical", "electr"},
      {"hopeful", "hope"}, {"goodness", "good"}, {"revival", "reviv"}, {"allowance", "allow"},
      {"inference", "infer"}, {"airliner", "airlin"}, {"gyroscopic", "gyroscop"}, {"adjustable", "adjust"},
      {"defensible", "defens"}, {"irritant", "irrit"}, {"replacement", "replac"}, {"adjustment", "adjust"},
      {"dependent", "depend"}, {"adoption", "adopt"}, {"homologou", "homolog"}, {"communism", "commun"},
      {"activate", "activ"}, {"angulariti", "angular"}, {"homologous", "homolog"}, {"effective", "effect"},
      {"bowdlerize", "bowdler"}, {"probate", "probat"}, {"rate", "rate"}, {"cease", "ceas"}, {"controll", "control"},
      {"roll", "roll"}, {"generalizations", "gener"}, {"oscillators", "oscil"}, {"as", "as"}, {"is", "is"},
  };
  for (const auto& [word, stem] : examples) {
    INFO(word);
    CHECK(porter_stemmer::stem(word) == stem);
  }
  CHECK(porter_stemmer::stem("Running") == "Running");  // not lower-case ASCII: unchanged
}
