"""Open every image of a dataset as training loads it (the dataset check, ``ld_core check-data``).

Each image is read and decoded with what mmdet's ``LoadImageFromFile`` uses (``mmcv.imfrombytes``, cv2
backend, colour: EXIF orientation applied), so "decodes here" means "loads in training", and its decoded
size is compared with the one its annotation states. OpenCV 4.x returns a half-grey image for a truncated
JPEG instead of failing (5.x refuses it), so the file is also decoded by Pillow (JPEGs at 1/8 scale: every
byte of the compressed data is still read), which refuses truncated data. Images are opened by a pool of processes;
a progress line is printed every ``every`` images or ``seconds`` seconds.
"""
from __future__ import annotations

import io
import sys
import time
from typing import Iterable, NamedTuple, Optional

from ..errors import one_line


class ImageItem(NamedTuple):
    """One image to open: its path, the size its annotation states, and that annotation (file) for messages."""

    path: str
    width: int
    height: int
    source: str


def _pillow_problem(data: bytes) -> Optional[str]:
    """Why Pillow cannot decode ``data`` completely (truncated, corrupt), or None (also for formats it lacks)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return None  # a format or size Pillow refuses: cv2's decoding decides alone
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return one_line(exc) or type(exc).__name__
    return None


def open_image(item: ImageItem) -> Optional[str]:
    """The problem of one image (``<path>: <problem>``), or None when it loads at the size its annotation states.
    A missing file is None here: the check lists missing files itself."""
    import mmcv

    try:
        with open(item.path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{item.path}: image file cannot be read ({exc.strerror})"
    if not data:
        return f"{item.path}: image file is empty (0 bytes)"
    try:
        img, error = mmcv.imfrombytes(data, flag="color", backend="cv2"), None
    except Exception as exc:  # noqa: BLE001 - cv2 raises cv2.error on some malformed headers
        img, error = None, one_line(exc)
    pillow = _pillow_problem(data)
    if pillow is not None:
        partly = "cv2 decodes only part of it" if img is not None else "cv2 cannot decode it"
        return f"{item.path}: image file is truncated or corrupt ({pillow}; {partly}; {len(data):,} bytes)"
    if img is None:
        return f"{item.path}: image file cannot be decoded ({error or 'not an image, or corrupt'}; {len(data):,} bytes)"
    height, width = img.shape[:2]
    if (width, height) != (item.width, item.height):
        hint = (" (its EXIF orientation rotates it as training loads it)" if (height, width) == (item.width, item.height)
                else "")
        return (f"{item.path}: image is {width}x{height} but {item.source} says {item.width:g}x{item.height:g} "
                f"(width x height){hint}")
    return None


def open_images(items: Iterable[ImageItem], threads: int = 1, *, every: int = 1000, seconds: float = 10.0,
                out=None) -> list:
    """Problems (one line each, sorted by path) of every image in ``items``, opened by ``threads`` processes;
    progress lines (``[check-data] opened i / n images ...``) go to ``out`` (stdout) when ``items`` holds more
    than ``every`` images, at most every ``every`` images or ``seconds`` seconds."""
    import multiprocessing

    import mmcv  # noqa: F401 - imported once (seconds: it imports torch), before the workers fork

    items = list(items)
    out = sys.stdout if out is None else out
    total, threads = len(items), max(1, int(threads))
    if not total:
        return []
    start = last_time = time.monotonic()
    last_done, problems = 0, []
    pool = multiprocessing.get_context().Pool(threads) if threads > 1 and total > 1 else None
    try:
        results = (pool.imap_unordered(open_image, items, chunksize=max(1, min(64, total // (threads * 8))))
                   if pool is not None else map(open_image, items))
        for done, problem in enumerate(results, 1):
            if problem is not None:
                problems.append(problem)
            now = time.monotonic()
            if total > every and done < total and (done - last_done >= every or now - last_time >= seconds):
                rate = done / max(now - start, 1e-9)
                print(f"[check-data] opened {done:,} / {total:,} images ({100 * done // total}%, {rate:,.0f} "
                      f"images/s, {len(problems)} problem(s) so far)", file=out, flush=True)
                last_done, last_time = done, now
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    elapsed = time.monotonic() - start
    print(f"[check-data] opened {total:,} images in {elapsed:.1f} s ({threads} process{'es' * (threads > 1)}): "
          f"{len(problems)} problem(s)", file=out, flush=True)
    return sorted(problems)
