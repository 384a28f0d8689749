#!/usr/bin/env python3
"""Writes the fuzz seed corpora under Tests/fuzz/corpus/ from the shared fixtures (standard library only).

    scripts/make-fuzz-seeds.py [FIXTURES]        (default: $QWENKIT_FIXTURES, else ../shared/fixtures)

The fixture models carry the full 151,936-token vocabulary (megabytes), so the model seeds are
rebuilt small: the fixtures' first merges over the 256 byte tokens, Qwen's special tokens, and
tiny random weights (Qwen2 with biases in F32 and BF16, Qwen3 with q/k norms in Q8_0). Every seed
stays under 64 kB. Rerunning rewrites the same files (fixed seeds).
"""
import json
import os
import random
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "QWENKIT_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures"))
CORPUS = os.path.join(ROOT, "Tests", "fuzz", "corpus")
SEPARATOR = b"\n#qwenkit-fuzz-next-file#\n"  # FuzzInput.fileSeparator
MAX_SEED = 64 * 1024


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    assert len(data) <= MAX_SEED, f"{target}/{name} is {len(data)} bytes"
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(FIXTURES, path), "rb") as f:
        return f.read()


# --- A small vocabulary from the real one -------------------------------------------------------

def bytes_to_unicode():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + n))
            n += 1
    return chars


qwen = json.loads(read("qwen2.5-tokenizer/tokenizer.json"))
vocab = bytes_to_unicode()
known = set(vocab)
merges = []
for pair in qwen["model"]["merges"]:
    left, right = pair if isinstance(pair, list) else pair.split(" ", 1)
    if left in known and right in known and left + right not in known:
        merges.append((left, right))
        vocab.append(left + right)
        known.add(left + right)
        if len(merges) == 160:
            break
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<tool_call>", "</tool_call>", "<think>", "</think>"]
tokens = vocab + SPECIAL + USER_DEFINED
token_types = [1] * len(vocab) + [3] * len(SPECIAL) + [4] * len(USER_DEFINED)
TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{- message.content }}{%- endif %}"
    "{%- for call in message.tool_calls or [] %}<tool_call>\n{{ call.function | tojson }}\n</tool_call>{%- endfor %}"
    "{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# --- GGUF ----------------------------------------------------------------------------------------

U32, F32, STRING, ARRAY, I32 = 4, 6, 8, 9, 5
GGML_F32, GGML_Q8_0 = 0, 8


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, value):
    if kind == U32:
        return struct.pack("<I", value)
    if kind == I32:
        return struct.pack("<i", value)
    if kind == F32:
        return struct.pack("<f", value)
    if kind == STRING:
        return gguf_string(value)
    element, items = value
    return struct.pack("<IQ", element, len(items)) + b"".join(gguf_value(element, v) for v in items)


def f16(x):
    return struct.pack("<e", x)


def q8_0(values):
    out = b""
    for i in range(0, len(values), 32):
        block = values[i:i + 32]
        scale = max(abs(v) for v in block) / 127 or 1.0
        out += f16(scale) + bytes((round(v / scale) & 0xFF) for v in block)
    return out


def gguf(metadata, tensors, alignment=32):
    """metadata: [(key, kind, value)]; tensors: [(name, ne (innermost first), type, values)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += gguf_string(key) + struct.pack("<I", kind) + gguf_value(kind, value)
    blobs, offset = [], 0
    for name, ne, kind, values in tensors:
        data = q8_0(values) if kind == GGML_Q8_0 else struct.pack(f"<{len(values)}f", *values)
        out += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", kind, offset)
        blobs.append(data)
        offset += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * (-len(out) % alignment)
    for data in blobs:
        out += data + b"\0" * (-len(data) % alignment)
    return out


def model_shapes(arch, hidden, heads, kv_heads, head_dim, ffn, layers, vocab_size):
    """(gguf name, hf name, shape as rows × cols, kind) for every tensor of a dense Qwen2/Qwen3."""
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes = [("token_embd.weight", "model.embed_tokens.weight", (vocab_size, hidden), "matrix"),
              ("output_norm.weight", "model.norm.weight", (hidden,), "norm")]
    for i in range(layers):
        g, h = f"blk.{i}.", f"model.layers.{i}."
        shapes += [
            (g + "attn_norm.weight", h + "input_layernorm.weight", (hidden,), "norm"),
            (g + "ffn_norm.weight", h + "post_attention_layernorm.weight", (hidden,), "norm"),
            (g + "attn_q.weight", h + "self_attn.q_proj.weight", (q, hidden), "matrix"),
            (g + "attn_k.weight", h + "self_attn.k_proj.weight", (kv, hidden), "matrix"),
            (g + "attn_v.weight", h + "self_attn.v_proj.weight", (kv, hidden), "matrix"),
            (g + "attn_output.weight", h + "self_attn.o_proj.weight", (hidden, q), "matrix"),
            (g + "ffn_gate.weight", h + "mlp.gate_proj.weight", (ffn, hidden), "matrix"),
            (g + "ffn_up.weight", h + "mlp.up_proj.weight", (ffn, hidden), "matrix"),
            (g + "ffn_down.weight", h + "mlp.down_proj.weight", (hidden, ffn), "matrix"),
        ]
        if arch == "qwen2":
            shapes += [(g + "attn_q.bias", h + "self_attn.q_proj.bias", (q,), "norm"),
                       (g + "attn_k.bias", h + "self_attn.k_proj.bias", (kv,), "norm"),
                       (g + "attn_v.bias", h + "self_attn.v_proj.bias", (kv,), "norm")]
        else:
            shapes += [(g + "attn_q_norm.weight", h + "self_attn.q_norm.weight", (head_dim,), "norm"),
                       (g + "attn_k_norm.weight", h + "self_attn.k_norm.weight", (head_dim,), "norm")]
    return shapes


def values(rng, shape, kind):
    n = 1
    for d in shape:
        n *= d
    return [1.0 + rng.uniform(-0.1, 0.1) if kind == "norm" else rng.uniform(-0.5, 0.5) for _ in range(n)]


def gguf_model(arch, hidden, heads, kv_heads, head_dim, ffn, layers, quantized):
    rng = random.Random(7)
    metadata = [
        ("general.architecture", STRING, arch),
        (f"{arch}.block_count", U32, layers),
        (f"{arch}.context_length", U32, 256),
        (f"{arch}.embedding_length", U32, hidden),
        (f"{arch}.feed_forward_length", U32, ffn),
        (f"{arch}.attention.head_count", U32, heads),
        (f"{arch}.attention.head_count_kv", U32, kv_heads),
        (f"{arch}.attention.key_length", U32, head_dim),
        (f"{arch}.rope.freq_base", F32, 1_000_000.0),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32, 1e-6),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, "qwen2"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, token_types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, [f"{a} {b}" for a, b in merges])),
        ("tokenizer.ggml.eos_token_id", U32, tokens.index("<|im_end|>")),
        ("tokenizer.chat_template", STRING, TEMPLATE),
    ]
    tensors = []
    for name, _, shape, kind in model_shapes(arch, hidden, heads, kv_heads, head_dim, ffn, layers, len(tokens)):
        ggml = GGML_Q8_0 if quantized and kind == "matrix" else GGML_F32
        tensors.append((name, list(reversed(shape)), ggml, values(rng, shape, kind)))
    return gguf(metadata, tensors)


# --- safetensors ---------------------------------------------------------------------------------

def bf16(x):
    return struct.pack("<f", x)[2:]


def safetensors_model(arch, hidden, heads, kv_heads, head_dim, ffn, layers):
    rng = random.Random(11)
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for i, (_, name, shape, kind) in enumerate(model_shapes(arch, hidden, heads, kv_heads, head_dim, ffn, layers,
                                                            len(tokens))):
        v = values(rng, shape, kind)
        dtype, data = ("BF16", b"".join(bf16(x) for x in v)) if i % 2 else ("F32", struct.pack(f"<{len(v)}f", *v))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def hf_config(fixture, arch, hidden, heads, kv_heads, head_dim, ffn, layers):
    config = json.loads(read(f"models/{fixture}/config.json"))
    config.update(hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=ffn,
                  num_hidden_layers=layers, vocab_size=len(tokens), tie_word_embeddings=True,
                  eos_token_id=tokens.index("<|im_end|>"), bos_token_id=tokens.index("<|endoftext|>"))
    if arch == "qwen3":
        config["head_dim"] = head_dim
    return json.dumps(config, indent=2).encode()


# --- the corpora ---------------------------------------------------------------------------------

write("gguf", "qwen2-f32.gguf", gguf_model("qwen2", 8, 2, 1, 4, 16, 2, quantized=False))
write("gguf", "qwen3-q8_0.gguf", gguf_model("qwen3", 32, 2, 1, 16, 32, 1, quantized=True))

generation = read("models/tiny-qwen2/generation_config.json")
for arch, fixture, dims in [("qwen2", "tiny-qwen2", (8, 2, 1, 4, 16, 2)), ("qwen3", "tiny-qwen3", (8, 2, 1, 8, 16, 2))]:
    write("safetensors", f"{arch}-dir", hf_config(fixture, arch, *dims) + SEPARATOR + safetensors_model(arch, *dims)
          + SEPARATOR + generation)

small_tokenizer = dict(qwen)
small_tokenizer["model"] = dict(qwen["model"], vocab={t: i for i, t in enumerate(vocab)},
                                merges=[[a, b] for a, b in merges])
small_tokenizer["added_tokens"] = [
    {"id": len(vocab) + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
     "special": t in SPECIAL} for i, t in enumerate(SPECIAL + USER_DEFINED)]
write("tokenizer", "tokenizer-json", b"\xc0" + json.dumps(small_tokenizer, ensure_ascii=False).encode())
cases = [json.loads(line) for line in read("tokenizer/qwen2.5-cases.jsonl").decode().splitlines() if line]
for case in cases[:60]:
    mode = b"\x40" if case.get("split_special_tokens") else b"\x00"
    text = case["text"].encode("utf-8")
    if len(text) < 4096:
        write("tokenizer", f"case-{case['id']}", mode + text)
write("tokenizer", "ids", b"\x80" + b"".join(struct.pack("<I", i) for i in [9707, 1879, 151644, 151645, 200000, 3]))

for name in ["qwen2.5.jinja", "qwen3.jinja", "qwen3.5.jinja"]:
    write("jinja", name, read(f"templates/{name}"))
write("jinja", "small-chatml.jinja", TEMPLATE)

TEMPLATE_INDEX = {"qwen2.5": 0, "qwen3": 1, "qwen3.5": 2}  # fuzzChat's order
for name in ["cases.jsonl", "cases-qwen3.5.jsonl"]:
    for line in read(f"templates/{name}").decode().splitlines():
        case = json.loads(line)
        thinking = {None: 0, False: 1, True: 2}[case["enable_thinking"]]
        options = TEMPLATE_INDEX[case["template"]] | (4 if case["add_generation_prompt"] else 0) | thinking << 3
        request = {"messages": case["messages"]}
        if case["tools"] is not None:
            request["tools"] = case["tools"]
        data = bytes([options]) + json.dumps(request, ensure_ascii=False).encode()
        if len(data) <= 16 * 1024:
            write("chat", f"{case['template']}-{case['id']}", data)

for path in ["models/tiny-qwen2/config.json", "models/tiny-qwen3/config.json", "models/tiny-qwen35/config.json",
             "models/tiny-qwen2/generation_config.json", "models/tiny-qwen2/tokenizer_config.json",
             "models/tiny-qwen2/reference-q8_0.json"]:
    write("json", path.replace("models/", "").replace("/", "-"), read(path))
for i, line in enumerate(read("templates/cases.jsonl").decode().splitlines()[:20]):
    if len(line.encode()) <= MAX_SEED:
        write("json", f"template-case-{i}.json", line)
write("json", "numbers.json", '[0, -0, 1e308, -1.5e-310, 123456789012345678901234567890, 9223372036854775807, '
      '-9223372036854775808, 0.1, 1E+2, "\\ud83d\\ude00\\u0000\\n", {"a": {"b": [true, false, null]}}]')

weather = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                            "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}
schemas = [
    weather,
    {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "null"}]}},
    {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                         "required": ["x", "y"], "additionalProperties": False}},
     "type": "object", "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"const": "fixed"}}},
    {"type": "string", "enum": ["a", "ab", "abc", "b\u00e9", "\u6771\u4eac"]},
    {"type": ["object", "string"]},
]
for i, schema in enumerate(schemas):
    for mode in range(3):
        write("schema", f"schema-{i}-{mode}",
              json.dumps(schema).encode() + SEPARATOR + bytes([mode]) + bytes(random.Random(i).randrange(256)
                                                                                for _ in range(64)))

toolcall_texts = [
    (0, '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n</tool_call>'),
    (0, 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n'
        '{"name": "search", "arguments": {}}\n</tool_call>'),
    (0, '{"name": "get_weather", "arguments": {"city": "Paris"}}'),
    (2, 'Let me think.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'),
    (1, '<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n'
        '</parameter>\n</function>\n</tool_call>'),
    (1 | 8, '<think>\nhmm\n</think>\n\nText first.\n<tool_call>\n<function=get_weather>\n<parameter=city>\n東京\n'
            '</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=search>\n<parameter=query>\n{"a": 1}\n'
            '</parameter>\n</function>\n</tool_call>'),
    (1 | 4 | 16, '<tool_call>\n<function=search>\n<parameter=query>\n[1, 2]\n</parameter>\n</function>\n</tool_call>'),
    (0 | 32, '<think>\nplain answer with <tool_call> inside thought\n</think>\nThe answer.'),
]
for i, (options, text) in enumerate(toolcall_texts):
    write("toolcall", f"call-{i}", bytes([options]) + text.encode())

print(f"wrote seeds under {os.path.relpath(CORPUS, ROOT)}")
