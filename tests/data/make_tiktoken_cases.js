// Makes tests/data/tiktoken_cases.json: texts written for lmkit's tests plus seeded random texts
// built from characters that stress the pre-tokenising patterns, each with the ids the real
// tiktoken gives for gpt2, cl100k_base and o200k_base (encode_ordinary).
// usage: node make_tiktoken_cases.js > tiktoken_cases.json   (needs the tiktoken peer installed:
//        NODE_PATH=/tmp/tiktoken-peer/node_modules, see ../shared/peers/README.md)
const { get_encoding } = require('tiktoken');

const written = {
  english_prose:
    "The lighthouse keeper wasn't sure whether the fog would lift before the supply boat arrived. " +
    "She'd counted 37 gulls on the railing that morning, and they'll stay, she thought, until the " +
    "weather turns. \"Nobody's coming today,\" said her brother; he'd said that every day since March.",
  code_tabs_spaces:
    "int main(int argc, char** argv) {\n\tif (argc < 2) {\n\t\treturn 1;\n\t}\n    // four spaces\n" +
    "        x  =  y   +   z;\t\t// tabs after code\n\n\n    return 0;   \n}\n",
  numbers: "0 1 12 123 1234 12345 123456 3.14159 -42 1,000,000 2026-11-29 0x7fff 1e-5 ١٢٣ Ⅻ ½ ² ①",
  crlf: "first line\r\nsecond line\r\n\r\n  indented\r\n\ttabbed\r\nend without newline\r\r\n\n\r",
  emoji_joiners: "family 👨‍👩‍👧‍👦 thumbs 👍🏽 flag 🇰🇷🇫🇷 keycap 1️⃣ heart ❤️ rainbow 🏳️‍🌈 ok👌!",
  combining_marks:
    "cafe\u0301 nai\u0308ve A\u030A ñ vs n\u0303 Z\u0351\u0352\u0353algo \u0915\u093F\u0924\u093E\u092C " +
    "e\u20DD \u0627\u064E\u0644\u0652",
  korean:
    "오늘 아침에는 비가 조금 내렸지만, 오후가 되자 하늘이 맑게 개었다. 우리는 강가를 따라 " +
    "천천히 걸으면서 지난 여름에 읽었던 책 이야기를 나누었다. 친구는 그 책의 마지막 장이 " +
    "가장 좋았다고 말했고, 나는 두 번째 장의 편지 장면을 떠올렸다. 저녁 7시쯤 작은 식당에 " +
    "들어가 김치찌개와 계란말이를 주문했다.",
  contractions: "it's IT'S they'RE we'Ve I'M you'LL he'D don't 'sup ''s 's' ſ 'ſ x'ſt",
  whitespace_runs: "a  b   c\u00A0\u00A0d\u3000e\u2003\u2003f \u2028 g\u0085h\u000B\u000Ci    \n   \n\n  ",
  // Characters that Unicode 15.1 and 16.0 assigned (tiktoken's regex tables are Unicode 16.0):
  // letters before contractions, Garay's upper and lower case, new digits in runs past three, marks.
  unicode16_letters:
    "\u{13460}'t \u{13461}'s x\u{143FA}'LL \u{2EBF0}\u{2EBF1}\u{2EE5D} text \u{10D50}\u{10D70}\u{10D71} \u{10D51}\u{10D72}" +
    " A\u{10D50}b \u{105C0}\u{105F3}'re \u{11BC0}\u{11BE0} \u{16100}\u{1611E} \u{16D40}\u{16D43}\u{16D6B} \u{1E5D0}\u{1E5EE}" +
    " \u{18CFF}'d \u{10D4E}\u{10D4F}\u{10D6F} \u{11380}\u{113B8}\u{113D1}\u{113E1}",
  unicode16_numbers:
    "\u{10D40}\u{10D41}\u{10D42}\u{10D43}\u{10D44} \u{16130}\u{16131}\u{16132}\u{16133} \u{16D70}\u{16D71} " +
    "\u{11BF0}\u{11BF1}\u{11BF2}\u{11BF9} \u{1E5F1}\u{1E5F2}\u{1E5F3}\u{1E5F4} \u{116D0}\u{116E3} " +
    "\u{1CCF0}\u{1CCF1}\u{1CCF2}\u{1CCF3}\u{1CCF9}7 x\u{10D49}1",
  unicode16_cased_and_marks:
    "\u1C89\u1C8A \uA7CB\uA7CC\uA7CD \uA7DA\uA7DB\uA7DC ab\uA7CBcd \u0915\u0897 x\u{10EFC}'s \u{10EC2}\u{10EC4}" +
    " \u{11F5A}\u{10D69}\u{10D6D}",
};

// Seeded generator (mulberry32) so the file is reproducible.
function rng(seed) {
  return function () {
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pools = [
  "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "     ", "\t\n\r\n\u000B\u000C",
  ".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`\"", "'''''", "sStTmMdDrReEvVlL", "\u017F",
  "éßñÄÖüøåçÉ\u00AA\u00BA\u00B2\u00BD\u00A0\u00AD", "\u0301\u0308\u0903\u20DD\uFE0F\u0651",
  "αβγΔΣΩабвЖЯ", "\u01C5\u01C8\u01CB", "\u02B0\u02C6\u3005\u02E0", "漢字語文中国日本", "ひらがなカタカナ",
  "한국어문장입니다", "\u0627\u0644\u0639\u0631\u0628\u064A\u0629\u0661\u0662", "\u216B\u2460\u2155",
  "\u2003\u3000\u2028\u2029\u0085\u1680\u202F\u205F", "😀👍🏽👨‍👩‍👧🇰🇷❤️", "€∑∞√≠", "\u200B\uFEFF\u200D",
  "\u0000\u0001\u007F", "\uD835\uDC00\uD835\uDC1A\uD835\uDFCE",  // 𝐀 𝐚 𝟎 (4-byte Lu, Ll, Nd)
];
const random = rng(20261129);
function pick(s) { const chars = Array.from(s); return chars[Math.floor(random() * chars.length)]; }
function randomText() {
  const length = 1 + Math.floor(random() * 40);
  const favourite = pools.map(() => random() * random());  // each text leans on a few pools
  const total = favourite.reduce((a, b) => a + b, 0);
  let text = "";
  for (let i = 0; i < length; i++) {
    let r = random() * total, p = 0;
    while (r > favourite[p] && p < pools.length - 1) r -= favourite[p++];
    const run = random() < 0.3 ? 1 + Math.floor(random() * 5) : 1;
    for (let k = 0; k < run; k++) text += pick(pools[p]);
  }
  return text;
}
const cases = Object.entries(written).map(([name, text]) => ({ name, text }));
for (let i = 0; i < 250; i++) cases.push({ name: `random_${i}`, text: randomText() });
// Long pieces, merged by lmkit's heap path.
let blob = "";
for (let i = 0; i < 600; i++) blob += pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
cases.push({ name: "long_blob", text: blob });
let word = "";
for (let i = 0; i < 400; i++) word += pick("abcdefghijklmnopqrstuvwxyz");
cases.push({ name: "long_word", text: word });
cases.push({ name: "long_spaces", text: "x" + " ".repeat(1000) + "y" + "\n".repeat(300) });
cases.push({ name: "long_digits", text: "7".repeat(301) + " " + "1234567890".repeat(30) });
cases.push({ name: "long_punctuation", text: "=".repeat(257) + "-~".repeat(150) });

const encodings = ["gpt2", "cl100k_base", "o200k_base"];
const encoders = Object.fromEntries(encodings.map((e) => [e, get_encoding(e)]));
for (const c of cases) for (const e of encodings) c[e] = Array.from(encoders[e].encode_ordinary(c.text));
for (const e of encodings) encoders[e].free();
process.stdout.write("[\n" + cases.map((c) => JSON.stringify(c)).join(",\n") + "\n]\n");
