// Makes tests/data/hf_tokenizer_cases.json: small tokenizer.json files of the kinds lmkit reads
// (SentencePiece-style with a Prepend/Replace normalizer, with Metaspace "first", with Metaspace
// "always" and split; byte-level with ByteLevel), each with added tokens (special and not, lstrip,
// rstrip, one the prefix of another, ids past the model's vocabulary), and random texts with the
// ids Hugging Face's own tokenizers library gives them (encode, no special tokens added).
// usage: node make_hf_tokenizer_cases.js > hf_tokenizer_cases.json   (needs the `tokenizers` npm
//        package, Hugging Face's Rust library: NODE_PATH=/tmp/hft/node_modules)
const { Tokenizer } = require('tokenizers');

function rng(seed) {  // mulberry32, so that the file is reproducible
  return function () {
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(20261203);
const pick = (a) => a[Math.floor(random() * a.length)];

const corpus = ("the king and the queen went to the hall where the knights were waiting for them " +
                "hello world the thing that they think is there then these three theses").split(" ");

// A few BPE merges learnt from `words` (each an array of symbols): the most frequent pair first.
function learn(words, count) {
  const merges = [];
  for (let m = 0; m < count; m++) {
    const pairs = new Map();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i] + " " + w[i + 1];
      pairs.set(k, (pairs.get(k) || 0) + 1);
    }
    let best = null;
    for (const [k, n] of pairs) if (!best || n > pairs.get(best)) best = k;
    if (!best || pairs.get(best) < 2) break;
    merges.push(best);
    const [l, r] = best.split(" ");
    for (const w of words) for (let i = 0; i + 1 < w.length; i++)
      if (w[i] === l && w[i + 1] === r) { w.splice(i, 2, l + r); }
  }
  return merges;
}

function addedTokens(first) {
  return [
    { content: "[INST]", special: false, lstrip: false, rstrip: false },
    { content: "<<SYS>>", special: true, lstrip: true, rstrip: false },
    { content: "[/INST]", special: true, lstrip: false, rstrip: true },
    { content: "<|im_start|>", special: true, lstrip: true, rstrip: true },
    { content: "<|im", special: true, lstrip: false, rstrip: false },
  ].map((t, k) => ({ id: first + k, single_word: false, normalized: false, ...t }));
}

function sentencepieceStyle(kind) {
  const space = "\u2581";
  const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab["<0x" + b.toString(16).toUpperCase().padStart(2, "0") + ">"] = 3 + b;
  const words = corpus.map((w) => Array.from(space + w));
  for (const w of words) for (const c of w) if (!(c in vocab)) vocab[c] = Object.keys(vocab).length;
  const merges = learn(words, 60);
  for (const m of merges) { const t = m.replace(" ", ""); if (!(t in vocab)) vocab[t] = Object.keys(vocab).length; }
  const n = Object.keys(vocab).length;
  const j = {
    version: "1.0", truncation: null, padding: null, post_processor: null, decoder: null,
    added_tokens: [
      { id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ...addedTokens(n)],
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
  };
  if (kind === "prepend") {
    j.normalizer = { type: "Sequence", normalizers: [{ type: "Prepend", prepend: space },
                                                     { type: "Replace", pattern: { String: " " }, content: space }] };
    j.pre_tokenizer = null;
  } else {
    j.normalizer = null;
    j.pre_tokenizer = { type: "Metaspace", replacement: space, prepend_scheme: kind === "first" ? "first" : "always",
                        split: kind !== "first" };
  }
  return j;
}

// GPT-2's printable spelling of bytes: the printable Latin-1 bytes stand for themselves, the
// others for code points from 256 on, in byte order.
function byteSpelling() {
  const keep = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
}

function byteLevel() {
  const spell = byteSpelling();
  const vocab = {};
  spell.forEach((s, b) => { vocab[s] = b; });
  const words = corpus.map((w, i) => Array.from(Buffer.from((i ? " " : "") + w, "utf8")).map((b) => spell[b]));
  const merges = learn(words, 60);
  for (const m of merges) { const t = m.replace(" ", ""); if (!(t in vocab)) vocab[t] = Object.keys(vocab).length; }
  const n = Object.keys(vocab).length;
  return {
    version: "1.0", truncation: null, padding: null, post_processor: null, normalizer: null,
    added_tokens: [{ id: n, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: false,
                     special: true }, ...addedTokens(n + 1)],
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  };
}

const tokenizers = {
  sentencepiece_prepend: sentencepieceStyle("prepend"),
  sentencepiece_metaspace_first: sentencepieceStyle("first"),
  sentencepiece_metaspace_always_split: sentencepieceStyle("always"),
  byte_level: byteLevel(),
};
const parts = ["<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<<SYS>>", "<|im_start|>", "<|im", "<|im_end|>",
               "<|endoftext|>", " ", "  ", "\n", "\t", "\u3000", "\u00a0", "the", "The king", "hello", "x", "é",
               "日本", "😀", "1234", "\u2581"];
const texts = ["", " ", "the", " the", "  the", "<s>", " <s> ", "the<s>the", "[INST] hello [/INST] the"];
while (texts.length < 200) {
  let t = "";
  for (let k = 1 + Math.floor(random() * 16); k > 0; k--) t += pick(parts);
  texts.push(t);
}
(async () => {
  const cases = texts.map((text) => ({ text, ids: {} }));
  for (const [name, json] of Object.entries(tokenizers)) {
    const tok = Tokenizer.fromString(JSON.stringify(json));
    for (const c of cases) c.ids[name] = (await tok.encode(c.text, null, { addSpecialTokens: false })).getIds();
  }
  process.stdout.write(JSON.stringify({ tokenizers, cases }) + "\n");
})().catch((e) => { console.error(e); process.exit(1); });
