"""Face identification over MCP at the server's default threshold.

    .venv/bin/python bench/face_id.py --enroll DIR --probe DIR [--probe DIR] --json bench/out/face_id.json

Each --enroll sub-folder is a person (every photo in it enrolled, largest face); each --probe
sub-folder is a person too: probes of an enrolled person must be identified, the others rejected
(decision not 'known'). A folder named `groups` is reported as faces found per photo. Timing:
face_identify round trips on every probe photo rescaled to 1 megapixel.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import run_benchmark  # noqa: E402
from tests.support import call, server_env, stdio_session  # noqa: E402

PHOTOS = (".jpg", ".jpeg", ".png", ".webp")


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTOS)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def one_megapixel(path: Path) -> bytes:
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    f = (1_000_000 / (im.width * im.height)) ** 0.5
    im = im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    return buf.getvalue()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    enroll_root = Path(args.enroll)
    people = [p for p in sorted(enroll_root.iterdir()) if p.is_dir() and p.name != "groups"]
    out: dict[str, Any] = {"enrolled": [p.name for p in people], "probes": [], "groups": []}
    with tempfile.TemporaryDirectory() as home:
        async with stdio_session("persona", server_env(Path(home))) as s:
            ids = {}
            for person in people:
                ids[person.name] = (await call(s, "user_create", {"name": person.name})).data["user_id"]
                r = await call(s, "face_enroll", {"user_id": ids[person.name], "face_index": 0,
                                                  "image": [b64(p.read_bytes()) for p in photos(person)]})
                assert not r.is_error, r.text
            names = {v: k for k, v in ids.items()}
            timed: list[Path] = []
            for probe_root in map(Path, args.probe):
                for person in sorted(p for p in probe_root.iterdir() if p.is_dir()):
                    for photo in photos(person):
                        r = await call(s, "face_identify", {"image": b64(photo.read_bytes())})
                        faces = r.data["faces"] if not r.is_error else []
                        if person.name == "groups":
                            out["groups"].append({"photo": photo.name, "faces": len(faces),
                                                  "who": [names.get(f["user_id"]) for f in faces]})
                            continue
                        top = faces[0] if faces else None
                        out["probes"].append({
                            "person": person.name, "photo": photo.name, "enrolled": person.name in ids,
                            "faces": len(faces), "decision": top["decision"] if top else "no face",
                            "who": names.get(top["user_id"]) if top else None,
                            "score": top["score"] if top else None, "threshold": top["threshold"] if top else None})
                        timed.append(photo)
            await call(s, "face_identify", {"image": b64(one_megapixel(timed[0]))})  # warm-up
            ms = []
            for photo in timed * max(1, args.repeat):
                data = b64(one_megapixel(photo))
                t0 = time.perf_counter()
                await call(s, "face_identify", {"image": data})
                ms.append((time.perf_counter() - t0) * 1000)
    known = [p for p in out["probes"] if p["enrolled"]]
    unknown = [p for p in out["probes"] if not p["enrolled"]]
    out["identified"] = f"{sum(p['decision'] == 'known' and p['who'] == p['person'] for p in known)}/{len(known)}"
    out["rejected"] = f"{sum(p['decision'] != 'known' for p in unknown)}/{len(unknown)}"
    out["ms_per_1mp"] = {"n": len(ms), "p50": round(statistics.median(ms), 1), "p95": round(float(np.percentile(ms, 95)), 1)}
    return out


def show(res: dict[str, Any]) -> None:
    print(f"{'person':<14}{'photo':<22}{'enrolled':>9}{'faces':>7}{'decision':>10}{'who':>12}{'score':>8}{'thresh':>8}")
    for p in res["probes"]:
        print(f"{p['person']:<14}{p['photo']:<22}{p['enrolled']!s:>9}{p['faces']:>7}{p['decision']:>10}"
              f"{p['who']!s:>12}{p['score']!s:>8}{p['threshold']!s:>8}")
    for g in res["groups"]:
        print(f"group photo {g['photo']}: {g['faces']} faces: {g['who']}")
    t = res["ms_per_1mp"]
    print(f"enrolled identified {res['identified']}; not enrolled rejected {res['rejected']}; "
          f"face_identify on 1 MP photos over MCP: p50 {t['p50']} ms, p95 {t['p95']} ms (n={t['n']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enroll", required=True)
    ap.add_argument("--probe", action="append", default=[])
    ap.add_argument("--repeat", type=int, default=5, help="timed passes over the probe photos")
    run_benchmark(ap, run, show)


if __name__ == "__main__":
    main()
