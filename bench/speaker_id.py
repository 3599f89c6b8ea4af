"""Speaker identification over MCP on an FSDD-layout folder, at the server's default thresholds.

    .venv/bin/python bench/speaker_id.py --data ../shared/datasets/fsdd-dev --enroll george,jackson,lucas \
        --json bench/out/speaker_id.json [--calibration]

Speakers named in --enroll are enrolled from their first 3 five-digit utterances; their other
utterances are genuine probes, every utterance of the other speakers is an impostor probe.
Conditions: clean 5-digit utterances (~2.5 s), 2-digit clips (~1 s), and 5-digit utterances
mixed with another speaker's voice 10 dB below. A probe is accepted when the server answers
'known'; 'uncertain' counts as not accepted. EER comes from the scores the server returns.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import run_benchmark  # noqa: E402
from tests.datasets import RATE, fsdd, wav_b64  # noqa: E402
from tests.support import call, server_env, stdio_session  # noqa: E402

BINS = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 10.0]


def eer(genuine: list[float], impostor: list[float]) -> tuple[float, float]:
    """(equal error rate %, threshold), sweeping every observed score."""
    if not genuine or not impostor:
        return float("nan"), float("nan")
    g, i = np.array(genuine), np.array(impostor)
    ts = np.unique(np.concatenate([g, i]))
    far = np.array([(i >= t).mean() for t in ts])
    frr = np.array([(g < t).mean() for t in ts])
    k = int(np.argmin(np.abs(far - frr)))
    return float(100 * (far[k] + frr[k]) / 2), float(ts[k])


def mix(probe: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    other = np.resize(other, len(probe))
    gain = np.sqrt(np.mean(probe**2) / max(np.mean(other**2), 1e-12) / 10 ** (snr_db / 10))
    out = probe + gain * other
    return (out / max(1.0, float(np.abs(out).max()))).astype(np.float32)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.data)
    five, two = fsdd(5, root), fsdd(2, root)
    enrolled = args.enroll.split(",")
    missing = [s for s in enrolled if s not in five]
    if missing:
        raise SystemExit(f"not in {root}: {missing}")
    speakers = sorted(five)
    # 2-digit clips of enrolled speakers that reuse enrolment recordings (the first 15) are left out.
    conditions: dict[str, list[tuple[str, np.ndarray]]] = {"clean ~2.5 s": [], "1 s clips": [], "10 dB overlap": []}
    for spk in speakers:
        known = spk in enrolled
        for j, w in enumerate(five[spk]):
            if not (known and j < 3):
                conditions["clean ~2.5 s"].append((spk, w))
                other = speakers[(speakers.index(spk) + 1 + j) % len(speakers)]
                other = other if other != spk else speakers[(speakers.index(spk) + 2) % len(speakers)]
                conditions["10 dB overlap"].append((spk, mix(w, five[other][-1 - j % len(five[other])], 10.0)))
        for j, w in enumerate(two[spk]):
            if not (known and 2 * j < 15):
                conditions["1 s clips"].append((spk, w))
    out: dict[str, Any] = {"data": str(root), "enrolled": enrolled, "impostors": [s for s in speakers if s not in enrolled],
                           "conditions": {}}
    with tempfile.TemporaryDirectory() as home:
        async with stdio_session("persona", server_env(Path(home))) as s:
            ids: dict[str, str] = {}
            for spk in enrolled:
                ids[spk] = (await call(s, "user_create", {"name": spk})).data["user_id"]
                r = await call(s, "speaker_enroll", {"user_id": ids[spk], "audio": [wav_b64(w) for w in five[spk][:3]]})
                assert not r.is_error, r.text
            names = {v: k for k, v in ids.items()}
            calib: list[tuple[float, float, bool]] = []
            for cond, probes in conditions.items():
                rows = []
                for spk, w in probes:
                    r = await call(s, "speaker_identify", {"audio": wav_b64(w)})
                    if r.is_error:
                        rows.append({"spk": spk, "error": r.text})
                        continue
                    scores = {names.get(c["user_id"]): c["score"] for c in r.data["candidates"]}
                    rows.append({"spk": spk, "decision": r.data["decision"], "who": names.get(r.data["user_id"]),
                                 "top": names.get(r.data["candidates"][0]["user_id"]) if r.data["candidates"] else None,
                                 "scores": scores, "seconds": r.data["speech_seconds"], "threshold": r.data["threshold"]})
                out["conditions"][cond] = summarise(rows, enrolled)
                if cond != "10 dB overlap":
                    for row in rows:
                        if "error" in row:
                            continue
                        if row["spk"] in enrolled:
                            calib.append((row["seconds"], row["scores"].get(row["spk"], 0.0), True))
                        elif row["scores"]:
                            calib.append((row["seconds"], max(row["scores"].values()), False))
            # Latency: 3.0 s of audio (probes cut or padded), after a warm-up call.
            clips = [np.resize(w, 3 * RATE) if len(w) < 3 * RATE else w[: 3 * RATE] for _, w in conditions["clean ~2.5 s"]]
            clips = (clips * (args.latency // max(1, len(clips)) + 1))[: args.latency]
            await call(s, "speaker_identify", {"audio": wav_b64(clips[0])})
            lat = []
            for w in clips:
                b64 = wav_b64(w)
                t0 = time.perf_counter()
                await call(s, "speaker_identify", {"audio": b64})
                lat.append((time.perf_counter() - t0) * 1000)
            out["latency_ms_3s"] = {"n": len(lat), "p50": round(statistics.median(lat), 1),
                                    "p95": round(float(np.percentile(lat, 95)), 1)}
            if args.calibration:
                out["calibration"] = calibration(calib)
    return out


def summarise(rows: list[dict[str, Any]], enrolled: list[str]) -> dict[str, Any]:
    genuine = [r for r in rows if r["spk"] in enrolled]
    impostor = [r for r in rows if r["spk"] not in enrolled]
    ok = [r for r in genuine if "error" not in r]
    imp_ok = [r for r in impostor if "error" not in r]
    accepted_right = sum(r["decision"] == "known" and r["who"] == r["spk"] for r in ok)
    wrong = sum(r["decision"] == "known" and r["who"] != r["spk"] for r in ok)
    far = sum(r["decision"] == "known" for r in imp_ok)
    g_scores = [r["scores"].get(r["spk"], 0.0) for r in ok]
    i_scores = [max(r["scores"].values()) for r in imp_ok if r["scores"]]
    rate, thr = eer(g_scores, i_scores)
    n_g, n_i = max(1, len(genuine)), max(1, len(impostor))
    return {
        "genuine": len(genuine), "impostor": len(impostor),
        "errors": len(rows) - len(ok) - len(imp_ok),
        "closed_set_accuracy": round(100 * sum(r["top"] == r["spk"] for r in ok) / max(1, len(ok)), 2),
        "accepted_right": round(100 * accepted_right / n_g, 2),
        "FRR": round(100 * (len(genuine) - accepted_right - wrong) / n_g, 2),
        "wrong_name": round(100 * wrong / n_g, 2),
        "FAR": round(100 * far / n_i, 2),
        "uncertain_genuine": round(100 * sum(r["decision"] == "uncertain" for r in ok) / n_g, 2),
        "uncertain_impostor": round(100 * sum(r["decision"] == "uncertain" for r in imp_ok) / n_i, 2),
        "EER": round(rate, 2), "EER_threshold": round(thr, 4),
        "default_threshold": [min(r["threshold"] for r in ok + imp_ok), max(r["threshold"] for r in ok + imp_ok)]
        if ok + imp_ok else None,
        "mean_speech_s": round(float(np.mean([r["seconds"] for r in ok + imp_ok])), 2) if ok + imp_ok else None,
    }


def calibration(points: list[tuple[float, float, bool]]) -> list[dict[str, Any]]:
    """Score percentiles by seconds of speech: where the default thresholds come from."""
    out = []
    for lo, hi in itertools.pairwise(BINS):
        g = [s for sec, s, gen in points if gen and lo <= sec < hi]
        i = [s for sec, s, gen in points if not gen and lo <= sec < hi]
        if len(g) < 5 or len(i) < 5:
            continue
        out.append({"seconds": f"{lo}-{hi}", "genuine_n": len(g), "impostor_n": len(i),
                    "genuine_p2": round(float(np.percentile(g, 2)), 3), "genuine_p10": round(float(np.percentile(g, 10)), 3),
                    "impostor_p99": round(float(np.percentile(i, 99)), 3), "impostor_max": round(max(i), 3)})
    return out


def show(res: dict[str, Any]) -> None:
    print(f"enrolled {','.join(res['enrolled'])}; impostors {','.join(res['impostors'])}; default thresholds")
    cols = ["genuine", "impostor", "errors", "closed_set_accuracy", "FAR", "FRR", "wrong_name", "uncertain_genuine",
            "uncertain_impostor", "EER", "EER_threshold", "mean_speech_s"]
    print(f"{'condition':<15}" + "".join(f"{c[:12]:>13}" for c in cols))
    for cond, m in res["conditions"].items():
        print(f"{cond:<15}" + "".join(f"{m[c]!s:>13}" for c in cols))
    lat = res["latency_ms_3s"]
    print(f"speaker_identify over MCP (stdio), 3.0 s audio: p50 {lat['p50']} ms, p95 {lat['p95']} ms (n={lat['n']})")
    if res.get("calibration"):
        print("score percentiles by seconds of speech (all conditions but overlap):")
        for row in res["calibration"]:
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "fsdd-dev"))
    ap.add_argument("--enroll", default="george,jackson,lucas")
    ap.add_argument("--latency", type=int, default=100, help="speaker_identify calls timed on 3 s audio")
    ap.add_argument("--calibration", action="store_true", help="also print score percentiles by speech length")
    run_benchmark(ap, run, show)


if __name__ == "__main__":
    main()
