"""The frozen teacher's head outputs per input image, computed once and reused when the image comes back.

A teacher in eval mode under ``no_grad`` is a fixed function of each image (BN running statistics, GN and
convolutions act per image), so over a multi-epoch schedule most of an LD student's teacher forwards repeat
an earlier one: with 400 training images, random flip and 3,200 images seen (the embedded 1x), at most 800
are distinct. Images are keyed by the bytes of their preprocessed tensor (shape, dtype, BLAKE2b digest), so
any augmentation that changes an image only misses the cache, it never returns a wrong output. Only the
images not yet stored go through the teacher, as one sub-batch; stored outputs are fp32 copies, kept until
the memory budget (``max_mb``) is used up, after which new images are computed every time.
"""
from __future__ import annotations

import hashlib

import torch


def _split(outs, n: int):
    """Per-image pieces of a (nested) tuple/list of batch tensors: a list of ``n`` structures like ``outs``."""
    if torch.is_tensor(outs):
        return [outs[i].clone() for i in range(n)]
    if isinstance(outs, (list, tuple)):
        parts = [_split(o, n) for o in outs]
        return [type(outs)(p[i] for p in parts) for i in range(n)]
    if outs is None:
        return [None] * n
    raise TypeError(f"teacher cache: cannot split a {type(outs).__name__} of the teacher's outputs")


def _stack(pieces: list):
    """The inverse of :func:`_split`: one batch structure from per-image pieces."""
    first = pieces[0]
    if torch.is_tensor(first):
        return torch.stack(pieces)
    if isinstance(first, (list, tuple)):
        return type(first)(_stack([p[j] for p in pieces]) for j in range(len(first)))
    return None


def _nbytes(piece) -> int:
    if torch.is_tensor(piece):
        return piece.numel() * piece.element_size()
    if isinstance(piece, (list, tuple)):
        return sum(_nbytes(p) for p in piece)
    return 0


def image_key(image: torch.Tensor) -> tuple:
    """Shape, dtype and a 128-bit digest of one preprocessed image's bytes."""
    data = image.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    digest = hashlib.blake2b(data.contiguous().view(torch.uint8).numpy().tobytes(), digest_size=16).digest()
    return tuple(data.shape), str(data.dtype), digest


class TeacherOutputCache:
    """Teacher outputs per image up to ``max_mb`` MiB; ``hits``/``misses`` count images."""

    def __init__(self, max_mb: float):
        if max_mb <= 0:
            raise ValueError("teacher cache: max_mb must be > 0")
        self.max_bytes = int(max_mb * 2 ** 20)
        self.entries: dict = {}
        self.nbytes = self.hits = self.misses = 0

    def __call__(self, teacher_forward, batch_inputs: torch.Tensor):
        """``teacher_forward(batch_inputs)`` (under ``no_grad``), computed only for the images not stored."""
        keys = [image_key(img) for img in batch_inputs]
        todo, pending = [], set()
        for i, key in enumerate(keys):
            if key not in self.entries and key not in pending:
                todo.append(i)
                pending.add(key)
        fresh: dict = {}
        if todo:
            with torch.no_grad():
                outs = teacher_forward(batch_inputs if len(todo) == len(keys) else batch_inputs[todo])
            for i, piece in zip(todo, _split(outs, len(todo))):
                fresh[keys[i]] = piece
                size = _nbytes(piece)
                if self.nbytes + size <= self.max_bytes:
                    self.entries[keys[i]] = piece
                    self.nbytes += size
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return _stack([self.entries.get(k, fresh.get(k)) for k in keys])

    def summary(self) -> str:
        seen = self.hits + self.misses
        rate = 100.0 * self.hits / seen if seen else 0.0
        return (f"teacher cache: {self.hits} of {seen} images reused ({rate:.0f} %), {len(self.entries)} stored, "
                f"{self.nbytes / 2 ** 20:.0f} of {self.max_bytes / 2 ** 20:.0f} MiB")
