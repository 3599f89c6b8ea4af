"""Images in: JPEG / PNG / WebP bytes to an RGB array, EXIF orientation honoured, bombs refused.

The pixel limit is checked on the header, before any pixel is decoded. Large photos are decoded at
reduced size (JPEG draft mode) and scaled to a working size; boxes are reported in the original,
upright image's pixels.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mcp_servers.core.errors import UserError

from .media import sniff

FORMATS = ("JPEG", "PNG", "WEBP")
IMAGE_KINDS = ("a JPEG image", "a PNG image", "a WebP image")  # as media.sniff names them
WORK_PIXELS = 1_500_000  # detection cost grows with pixels; faces stay ≥ 80 px in most photos at this size


@dataclass(frozen=True)
class Picture:
    rgb: np.ndarray  # H x W x 3 uint8, upright, at working size
    width: int  # of the original, upright
    height: int
    scale: float  # working pixels per original pixel


def load(data: bytes, max_pixels: int, work_pixels: int = WORK_PIXELS) -> Picture:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"The image is larger than the {max_pixels / 1e6:.0f} MP limit.") from None
    except (UnidentifiedImageError, OSError):
        kind = sniff(data)
        if kind in IMAGE_KINDS:
            raise UserError(f"This looks like {kind} but cannot be read: it is truncated or corrupt. "
                            "Send the complete file (JPEG, PNG or WebP).") from None
        hint = f"This is {kind}, not a JPEG, PNG or WebP image" if kind else "This is not an image this server can read"
        raise UserError(f"{hint}: send JPEG, PNG or WebP.") from None
    if im.format not in FORMATS:
        raise UserError(f"This is a {im.format} image: send JPEG, PNG or WebP.")
    w, h = im.size
    if w * h > max_pixels:
        raise UserError(f"The image is {w}x{h} ({w * h / 1e6:.0f} MP); the limit is {max_pixels / 1e6:.0f} MP.")
    orientation = im.getexif().get(0x0112, 1)
    upright = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    try:
        if im.format == "JPEG" and w * h > work_pixels:
            factor = math.sqrt(work_pixels / (w * h))
            im.draft("RGB", (max(1, int(w * factor)), max(1, int(h * factor))))
        im = ImageOps.exif_transpose(im).convert("RGB")
        if im.width * im.height > work_pixels:
            factor = math.sqrt(work_pixels / (im.width * im.height))
            im = im.resize((max(1, int(im.width * factor)), max(1, int(im.height * factor))), Image.Resampling.BILINEAR)
        rgb = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"The image could not be decoded ({exc}); it may be truncated or corrupt.") from None
    return Picture(rgb, upright[0], upright[1], rgb.shape[1] / upright[0])
