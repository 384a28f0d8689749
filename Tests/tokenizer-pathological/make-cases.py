#!/usr/bin/env python3
"""Writes Tests/tokenizer-pathological/cases.jsonl: pathological inputs of a few kB each and
the ids Hugging Face `tokenizers` gives them, with both fixture tokenizers.

    /work/refvenv/bin/python Tests/tokenizer-pathological/make-cases.py \
        ../shared/fixtures > Tests/tokenizer-pathological/cases.jsonl

One JSON object per line: `name`, `tokenizer` ("qwen2.5" or "qwen3.5", the folder
`<fixtures>/<tokenizer>-tokenizer/tokenizer.json`), `text`, `ids`
(`encode(text, add_special_tokens=False)`). The texts come from a seeded generator, so the
file is reproducible. Non-ASCII is written raw; U+2028/U+2029/U+0085 do not occur.
"""
import json
import random
import sys

import tokenizers
from tokenizers import Tokenizer

rng = random.Random(20261203)
SIZE = 3000  # UTF-8 bytes, about

def fill(make):
    out, size = [], 0
    while size < SIZE:
        piece = make()
        out.append(piece)
        size += len(piece.encode())
    return "".join(out)

MARKS = ["\u0301", "\u0316", "\u0327", "\u0334", "\u0345", "\u031b", "\u0323", "\u0300", "\u05b0", "\u0f71", "\u093c"]
L = [chr(c) for c in range(0x1100, 0x1113)]
V = [chr(c) for c in range(0x1161, 0x1176)]
T = [chr(c) for c in range(0x11A8, 0x11C3)]
cycle = iter(range(10**9))

cases = {
    # One base letter and a long run of marks in non-canonical order.
    "marks-one-run": "a" + "".join(MARKS[i % 8] for i in range(1500)),
    # Bases with runs of 20-60 random marks (some compose: e + U+0301, c + U+0327).
    "marks-random-runs": fill(lambda: rng.choice("aecoq ") + "".join(rng.choice(MARKS) for _ in range(rng.randrange(20, 60)))),
    # Conjoining jamo: L V (T) syllables to compose, with stray V and T.
    "jamo-syllables": fill(lambda: rng.choice(L) + rng.choice(V) + (rng.choice(T) if rng.random() < 0.5 else "")
                           + (rng.choice(V + T) if rng.random() < 0.1 else "")),
    # An L and then only vowels and finals: one long segment that does not compose.
    "jamo-one-run": rng.choice(L) + "".join(rng.choice(V + T) for _ in range(1000)),
    # Precomposed syllables followed by finals (LV + T composes, LVT + T does not).
    "hangul-plus-finals": fill(lambda: chr(0xAC00 + 28 * rng.randrange(399) + rng.choice([0, 0, 5])) + rng.choice(T)),
    "one-letter": "a" * SIZE,
    "letters-no-space": fill(lambda: rng.choice("abcdefghijklmnopqrstuvwxyz")),
    "digits": fill(lambda: rng.choice("0123456789")),
    "spaces-then-word": " " * SIZE + "x",
    "whitespace-mix": fill(lambda: rng.choice([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "x"])),
    "emoji-zwj": fill(lambda: rng.choice(["\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",
                                          "\U0001F3F3\uFE0F\u200D\U0001F308", "\U0001F44D\U0001F3FD", "1\uFE0F\u20E3"])),
    "cjk": fill(lambda: chr(0x4E00 + rng.randrange(20992))),
    "symbols": fill(lambda: rng.choice("!@#$%^&*()[]{};:'\",.<>/?\\|`~-_=+")),
}

fixtures = sys.argv[1]
for tokenizer_name in ["qwen2.5", "qwen3.5"]:
    tok = Tokenizer.from_file(f"{fixtures}/{tokenizer_name}-tokenizer/tokenizer.json")
    for name, text in cases.items():
        ids = tok.encode(text, add_special_tokens=False).ids
        print(json.dumps({"name": name, "tokenizer": tokenizer_name, "text": text, "ids": ids}, ensure_ascii=False))
print(f"tokenizers {tokenizers.__version__}: {len(cases)} cases per tokenizer", file=sys.stderr)
