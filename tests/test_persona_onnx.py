"""The optional model paths through a real MCP client: wespeaker-format ONNX speaker models and
insightface buffalo_l, exercised with small ONNX graphs built here (shapes and plumbing: fbank
features in, embeddings out; SCRFD outputs decoded into boxes and landmarks, ArcFace crops). Their
accuracy checks need the real weights and skip without them."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tests.datasets import FACES, file_b64, fsdd, needs_fsdd, wav_b64
from tests.support import ALPHAAVATAR, ok, server_env, stdio_session
from tests.test_persona import new_user

REAL_WESPEAKER = os.environ.get("ALPHAAVATAR_TEST_WESPEAKER")
REAL_BUFFALO = os.environ.get("ALPHAAVATAR_TEST_BUFFALO_L")


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def wespeaker_like(path: Path, dim: int = 32) -> Path:
    """(batch, frames, 80) -> (batch, dim): the per-bin variance of the features, projected."""
    w = np.random.default_rng(1).normal(size=(80, dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["feats", "feats"], ["sq"]),
         helper.make_node("ReduceMean", ["sq", "axes"], ["var"], keepdims=0),
         helper.make_node("MatMul", ["var", "w"], ["embs"])],
        "wespeaker_like",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["B", "T", 80])],
        [helper.make_tensor_value_info("embs", TensorProto.FLOAT, ["B", dim])],
        [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"), numpy_helper.from_array(w, "w")],
    )
    return save(graph, path)


FACE_CELL = (5, 7)  # row, column of the stride-32 anchor that holds the one face


def buffalo_like(root: Path) -> Path:
    """det_10g.onnx: SCRFD's 9 outputs (scores, boxes, landmarks for strides 8/16/32) with one face;
    w600k_r50.onnx: 112x112 crop -> 512-d projection of its pooled pixels."""
    folder = root / "buffalo_l"
    folder.mkdir(parents=True)
    outputs, nodes, inits = [], [], []
    for k, (name, width) in enumerate((("score", 1), ("bbox", 4), ("kps", 10))):
        for stride in (8, 16, 32):
            n = (640 // stride) ** 2 * 2
            value = np.zeros((n, width), dtype=np.float32)
            if stride == 32:
                i = (FACE_CELL[0] * 20 + FACE_CELL[1]) * 2
                value[i] = {0: [0.9], 1: [2, 2, 2, 2],
                            2: [-0.8, -0.5, 0.8, -0.5, 0.0, 0.2, -0.6, 0.9, 0.6, 0.9]}[k]
            out = f"{name}_{stride}"
            inits.append(numpy_helper.from_array(value, f"{out}_c"))
            nodes.append(helper.make_node("Add", [f"{out}_c", "zero"], [out]))
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [n, width]))
    nodes.insert(0, helper.make_node("ReduceMean", ["input.1"], ["m"], keepdims=0))
    nodes.insert(1, helper.make_node("Mul", ["m", "nought"], ["zero"]))
    inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "nought"))
    det = helper.make_graph(nodes, "scrfd_like",
                            [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 640, 640])],
                            outputs, inits)
    save(det, folder / "det_10g.onnx")
    w = np.random.default_rng(2).normal(size=(3 * 14 * 14, 512)).astype(np.float32)
    rec = helper.make_graph(
        [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
         helper.make_node("Flatten", ["pooled"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["683"])],
        "arcface_like", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])], [numpy_helper.from_array(w, "w")])
    save(rec, folder / "w600k_r50.onnx")
    return root


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@needs_fsdd
async def test_wespeaker_onnx_via_download_files(tmp_path: Path) -> None:
    import subprocess

    served = tmp_path / "served"
    served.mkdir()
    wespeaker_like(served / "model.onnx")
    (served / "broken.onnx").write_bytes(b"not a model")
    home = tmp_path / "home"
    env = server_env(home)
    with serve_folder(served) as base:
        bad = subprocess.run([ALPHAAVATAR, "download-files", "--url", f"{base}/broken.onnx", "--url", f"{base}/missing"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 1 and "Could not download" in bad.stderr and "404" in bad.stderr
        good = subprocess.run([ALPHAAVATAR, "download-files", "--url", f"{base}/model.onnx"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert good.returncode == 0, good.stderr
    assert (home / "models" / "wespeaker" / "voxceleb_resnet34_LM.onnx").is_file()

    utts = fsdd()
    async with stdio_session("persona", server_env(home, ALPHAAVATAR_PERSONA_VOICE_MODEL="wespeaker")) as s:
        uid = await new_user(s, "George")
        r = await ok(s, "speaker_enroll", {"user_id": uid, "audio": wav_b64(utts["george"][0])})
        assert r["model"].startswith("wespeaker-")
        same = await ok(s, "speaker_identify", {"audio": wav_b64(utts["george"][0])})
        assert (same["decision"], same["user_id"]) == ("known", uid) and same["score"] > 0.999
        other = await ok(s, "speaker_identify", {"audio": wav_b64(utts["lucas"][7])})
        assert other["score"] < same["score"]
        seg = await ok(s, "speaker_segment", {"audio": wav_b64(np.concatenate([utts["george"][0], utts["lucas"][7]]))})
        assert seg["segments"] and seg["duration"] > 4
    wespeaker_dir = home / "persona" / "voice_wespeaker-voxceleb_resnet34_lm"
    assert uid.encode() in b"".join(p.read_bytes() for p in wespeaker_dir.rglob("*") if p.is_file())
    # Forgetting while another model is in use erases the samples kept for this one too.
    async with stdio_session("persona", server_env(home)) as s:
        assert (await ok(s, "user_forget", {"user_id": uid}))["user_id"] == uid
    assert uid.encode() not in b"".join(p.read_bytes() for p in (home / "persona").rglob("*") if p.is_file())


async def test_insightface_buffalo_l_plumbing(tmp_path: Path) -> None:
    root = buffalo_like(tmp_path / "models")
    rng = np.random.default_rng(3)

    def photo(seed: int) -> str:
        pixels = np.random.default_rng(seed).integers(0, 255, (640, 1280, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "PNG")
        return base64.b64encode(buf.getvalue()).decode()

    env = server_env(tmp_path / "home", ALPHAAVATAR_PERSONA_FACE_MODEL="insightface",
                     ALPHAAVATAR_PERSONA_INSIGHTFACE_ROOT=str(root))
    async with stdio_session("persona", env) as s:
        uid = await new_user(s, "Pat")
        enrolled = await ok(s, "face_enroll", {"user_id": uid, "image": photo(10)})
        assert enrolled["model"] == "insightface-buffalo_l"
        # The anchor at (row 5, col 7) of stride 32, distances 2 strides: (160, 96)-(288, 224) in the
        # 640 x 640 input, which is the 1280 x 640 photo at half size.
        box = enrolled["boxes"][0]
        assert (box["left"], box["top"], box["right"], box["bottom"]) == (320, 192, 576, 448)
        same = await ok(s, "face_identify", {"image": photo(10)})
        assert len(same["faces"]) == 1 and (same["faces"][0]["decision"], same["faces"][0]["user_id"]) == ("known", uid)
        assert same["faces"][0]["score"] > 0.999
        other = await ok(s, "face_identify", {"image": photo(int(rng.integers(100, 1000)))})
        assert other["faces"][0]["decision"] == "unknown"


@pytest.mark.skipif(not REAL_WESPEAKER, reason="no real wespeaker weights here (offline): set "
                    "ALPHAAVATAR_TEST_WESPEAKER to a wespeaker ONNX file (`alphaavatar download-files` fetches one)")
@needs_fsdd
async def test_wespeaker_accuracy_on_fsdd(tmp_path: Path) -> None:
    utts = fsdd()
    async with stdio_session("persona", server_env(tmp_path, ALPHAAVATAR_PERSONA_VOICE_MODEL=str(REAL_WESPEAKER))) as s:
        ids = {spk: await new_user(s, spk) for spk in ("george", "jackson", "lucas")}
        for spk, uid in ids.items():
            await ok(s, "speaker_enroll", {"user_id": uid, "audio": [wav_b64(w) for w in utts[spk][:3]]})
        right = sum([(await ok(s, "speaker_identify", {"audio": wav_b64(w)}))["user_id"] == ids[spk]
                     for spk in ids for w in utts[spk][3:13]])
        assert right >= 29


@pytest.mark.skipif(not REAL_BUFFALO, reason="no real insightface buffalo_l weights here (non-commercial licence, "
                    "not downloadable offline): set ALPHAAVATAR_TEST_BUFFALO_L to the model folder")
async def test_insightface_accuracy_on_dev_faces(tmp_path: Path) -> None:
    env = server_env(tmp_path, ALPHAAVATAR_PERSONA_FACE_MODEL="insightface",
                     ALPHAAVATAR_PERSONA_INSIGHTFACE_ROOT=str(REAL_BUFFALO))
    async with stdio_session("persona", env) as s:
        obama = await new_user(s, "Obama")
        await ok(s, "face_enroll", {"user_id": obama, "image": file_b64(FACES / "obama" / "obama_1.jpg")})
        r = await ok(s, "face_identify", {"image": file_b64(FACES / "obama" / "obama_3.jpg")})
        assert r["faces"][0]["user_id"] == obama
        r = await ok(s, "face_identify", {"image": file_b64(FACES / "rose_leslie" / "rose_leslie_1.jpg")})
        assert r["faces"][0]["decision"] == "unknown"

