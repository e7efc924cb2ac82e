#!/usr/bin/env python3
"""Regenerates the committed seed corpora in fuzz/corpus/ (developer tool;
CI and `make fuzz` only read the committed files). Run from the repo root:
    python3 fuzz/make_seeds.py
Seeds are small on purpose (total well under 2 MB): libFuzzer mutates small
inputs far faster, and the structure is what matters, not the weights."""
import json, os, struct, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1, "F64": 8}


def shrink(header, keep=6):
    """Same names and dtypes, tiny shapes, consistent offsets, real layout."""
    out, data, off = {}, b"", 0
    names = [k for k in header if k != "__metadata__"][:keep]
    for i, k in enumerate(names):
        dt = header[k]["dtype"]
        shape = [2, 3] if i % 2 == 0 else [4]
        n = 1
        for s in shape:
            n *= s
        nb = n * SIZES.get(dt, 4)
        out[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nb]}
        data += bytes((j * 37 + i) & 0xFF for j in range(nb))
        off += nb
    if "__metadata__" in header:
        out["__metadata__"] = header["__metadata__"]
    return out, data


def st_file(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    # --- JSON ---------------------------------------------------------------
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/data/*/config.json"))):
        put("fuzz_json", "config-" + os.path.basename(os.path.dirname(p)), open(p, "rb").read())
    for p in ["tests/data/tok-bytelevel/tokenizer_config.json",
              "tests/data/small-qwen3-moe-bpe/routing_stats.json",
              "tests/data/tok-sentencepiece/tokenizer_golden.json"]:
        put("fuzz_json", os.path.basename(os.path.dirname(p)) + "-" + os.path.basename(p),
            open(os.path.join(ROOT, p), "rb").read())
    hdr = json.dumps(st_header(os.path.join(ROOT, "tests/data/arch-qwen3-moe-fused/model.safetensors")))
    put("fuzz_json", "st-header-qwen3", hdr)
    edge = {
        "escapes": r'{"a":"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r","b":"\u0000x"}',
        "numbers": '[0,-0,1e308,-1e-308,1.5E+3,123456789012345678901234567890,-0.0e0,2e-400]',
        "nesting": "[" * 40 + "{}" + "]" * 40,
        "literals": '{"t":true,"f":false,"n":null,"e":[],"o":{},"s":""}',
        "dupkeys": '{"k":1,"k":2,"":3}',
        "ws": ' \t\r\n{ "x" : [ 1 , 2 ] } \n',
        "lone-surrogate": r'["\ud800","\udc00x"]',
    }
    for k, v in edge.items():
        put("fuzz_json", "edge-" + k, v)

    # --- config.json --------------------------------------------------------
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/data/*/config.json")) +
                    glob.glob(os.path.join(ROOT, "models/*/config.json"))):
        put("fuzz_config", os.path.basename(os.path.dirname(p)), open(p, "rb").read())

    # --- safetensors --------------------------------------------------------
    for p in ["tests/data/arch-mixtral/model.safetensors",
              "tests/data/arch-qwen3-moe-fused/model.safetensors",
              "tests/data/arch-qwen2-moe/model.safetensors",
              "tests/data/small-qwen3-moe-bpe/model-00003-of-00003.safetensors"]:
        h, d = shrink(st_header(os.path.join(ROOT, p)))
        put("fuzz_safetensors", "shrunk-" + os.path.basename(os.path.dirname(p)), st_file(h, d))
    put("fuzz_safetensors", "dtypes", st_file({
        "a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
        "b": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [6, 10]},
        "c": {"dtype": "F32", "shape": [], "data_offsets": [10, 14]},
        "d": {"dtype": "I64", "shape": [1], "data_offsets": [14, 22]},
        "e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [22, 22]},
        "__metadata__": {"format": "pt"}},
        bytes([0x00, 0x3c, 0x01, 0x00, 0xff, 0x7b, 0x80, 0x3f, 0x00, 0xc0, 0, 0, 0x80, 0x3f]) + bytes(8)))
    put("fuzz_safetensors", "empty-header", st_file({}, b""))


if __name__ == "__main__":
    main()
