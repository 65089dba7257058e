#!/usr/bin/env python3
"""Makes tests/data/sentencepiece_cases.json: lines of the texts in tiktoken_cases.json and a few
written here, each with the ids Debian's real SentencePiece (`spm_encode`, package sentencepiece)
gives with the fixture model's tok512.model. spm_encode reads one text per line, so the texts have
no newlines (the fixture's own references cover newlines).

usage: make_sentencepiece_cases.py MODEL > sentencepiece_cases.json
"""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
lines = []
for case in json.load(open(os.path.join(here, "tiktoken_cases.json"), encoding="utf-8")):
    lines += [line for line in case["text"].split("\n") if line and "\0" not in line]
lines += ["  two leading spaces", "trailing spaces   ", "a  b   c", "12345 67 8", "\tTab first", "ROMEO:",
          "    ", "Wherefore art thou, ROMEO? 2026-11-29", "naïve café ÅNGSTRÖM", "中文 and 日本語 mixed"]
unique = list(dict.fromkeys(lines))
text = "".join(line + "\n" for line in unique)
out = subprocess.run(["spm_encode", "--model", sys.argv[1], "--output_format=id"], input=text.encode("utf-8"),
                     capture_output=True, check=True).stdout.decode("ascii").split("\n")
assert len(out) == len(unique) + 1 and out[-1] == ""
cases = [{"text": line, "ids": [int(i) for i in ids.split()]} for line, ids in zip(unique, out)]
sys.stdout.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n")
