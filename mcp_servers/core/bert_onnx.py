"""A BERT encoder's graph written as ONNX straight from its safetensors weights, without torch.

The graph is transformers' eager `BertModel` (absolute positions, erf GELU, post-layer-norm), node
for node, ending at the last hidden state; the weights are the file's own, in float32. So the text
embedder runs on ONNX Runtime alone, and an install without torch gets the vectors a torch install
gets (tests/test_embeddings.py compares them with sentence-transformers').
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

NAMES = ["input_ids", "attention_mask", "token_type_ids"]


def buildable(model_dir: Path) -> bool:
    """Whether `build` can write this model: a plain BERT whose weights are a safetensors file."""
    cfg_file = model_dir / "config.json"
    if not (cfg_file.exists() and (model_dir / "model.safetensors").exists()):
        return False
    cfg = json.loads(cfg_file.read_text())
    return (cfg.get("model_type") == "bert" and cfg.get("hidden_act", "gelu") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute")


def build(model_dir: Path) -> bytes:
    """The serialized ONNX model: (input_ids, attention_mask, token_type_ids) -> hidden [batch, tokens, hidden]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    w = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    hidden, heads, eps = int(cfg["hidden_size"]), int(cfg["num_attention_heads"]), float(cfg["layer_norm_eps"])
    head = hidden // heads
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str) -> str:
        weight = const(f"{prefix}.weight.T", w[f"{prefix}.weight"].T.astype(np.float32))
        return node("Add", [node("MatMul", [x, weight], f"{out}.mm"), const(f"{prefix}.bias", w[f"{prefix}.bias"])],
                    out)

    def norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(f"{prefix}.weight", w[f"{prefix}.weight"]),
                                           const(f"{prefix}.bias", w[f"{prefix}.bias"])], out, axis=-1, epsilon=eps)

    # embeddings: words + positions 0..tokens-1 + token types, then a layer norm
    tokens = node("Shape", ["input_ids"], "tokens", start=1, end=2)
    emb = node("Add", [node("Add", [
        node("Gather", [const("word", w["embeddings.word_embeddings.weight"]), "input_ids"], "emb.words"),
        node("Slice", [const("position", w["embeddings.position_embeddings.weight"]), const("zero", np.array([0], np.int64)),
                       tokens, const("axis0", np.array([0], np.int64))], "emb.positions")], "emb.sum"),
        node("Gather", [const("type", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "emb.types")],
        "emb.all")
    x = norm(emb, "embeddings.LayerNorm", "emb")

    # padding is masked as transformers does: (1 - mask) * the lowest float32, added to the scores
    mask = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const("f.one", np.array(1, np.float32)), mask], "mask.inv"),
                        const("f.min", np.array(np.finfo(np.float32).min, np.float32))], "mask.min")
    bias = node("Unsqueeze", [bias, const("axes.1.2", np.array([1, 2], np.int64))], "mask.bias")
    split = const("split.shape", np.array([0, 0, heads, head], np.int64))
    merge = const("merge.shape", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1 / math.sqrt(head), np.float32))

    def heads_of(x: str, p: str, i: int, name: str, perm: list[int]) -> str:
        shaped = node("Reshape", [linear(x, f"{p}.attention.self.{name}", f"l{i}.{name}"), split], f"l{i}.{name}.h")
        return node("Transpose", [shaped], f"l{i}.{name}.t", perm=perm)

    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        q = heads_of(x, p, i, "query", [0, 2, 1, 3])
        k = heads_of(x, p, i, "key", [0, 2, 3, 1])  # transposed for q @ k
        v = heads_of(x, p, i, "value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{i}.qk"), scale], f"l{i}.scaled"), bias],
                      f"l{i}.scores")
        probs = node("Softmax", [scores], f"l{i}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}.ctx.h")], f"l{i}.ctx.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge], f"l{i}.ctx")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}.attn")
        x = norm(node("Add", [attn, x], f"l{i}.attn.res"), f"{p}.attention.output.LayerNorm", f"l{i}.attn.out")
        inner = linear(x, f"{p}.intermediate.dense", f"l{i}.inner")
        gelu = node("Mul", [node("Mul", [inner, const("half", np.array(0.5, np.float32))], f"l{i}.half"),
                            node("Add", [node("Erf", [node("Div", [inner, const("sqrt2", np.array(math.sqrt(2), np.float32))],
                                                           f"l{i}.div")], f"l{i}.erf"), "f.one"], f"l{i}.erf1")],
                    f"l{i}.gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}.out")
        x = norm(node("Add", [out, x], f"l{i}.out.res"), f"{p}.output.LayerNorm", f"l{i}.x")
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))

    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in NAMES]
    out_info = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", hidden])
    graph = helper.make_graph(nodes, "bert", ints, [out_info], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="alphaavatar")
    model.ir_version = 8
    return bytes(model.SerializeToString())
