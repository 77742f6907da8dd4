"""A checkpoint whose pickle would run code: refused as code, not tensors, naming what it would load; nothing
runs, weights_only stays on, and neither torch's advice to turn it off nor "truncated or corrupt" is shown."""
from __future__ import annotations

import collections
import os
import pickle

import pytest

torch = pytest.importorskip("torch")

from ld_core.errors import ConfigError  # noqa: E402
from ld_core.models.checkpoints import load_tensor_state_dict, read_checkpoint  # noqa: E402


class _Shell:
    """Unpickled, runs a shell command (what a malicious checkpoint does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Getattr:
    """Unpickled, reaches an attribute through builtins.getattr (allow-listed only for mmengine's HistoryBuffer)."""

    def __reduce__(self):
        return getattr, (collections.OrderedDict, "fromkeys")


def _write(kind: str, path, marker):
    state = {"w": torch.ones(2)}
    if kind == "zip":
        torch.save({"state_dict": state, "x": _Shell(marker)}, path)
    elif kind == "legacy":
        torch.save({"state_dict": state, "x": _Shell(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "plain pickle":
        path.write_bytes(pickle.dumps({"state_dict": {"w": 1}, "x": _Shell(marker)}, protocol=4))
    elif kind == "eval":
        torch.save({"state_dict": state, "x": _Reduce(eval, ("1 + 1",))}, path)
    elif kind == "getattr":
        torch.save({"state_dict": state, "x": _Getattr()}, path)
    return path


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("loader", [read_checkpoint, load_tensor_state_dict])
@pytest.mark.parametrize("kind,name", [("zip", "posix.system"), ("legacy", "posix.system"),
                                       ("plain pickle", "posix.system"), ("eval", "eval"),
                                       ("getattr", "getattr")])
def test_a_pickle_that_would_run_code_is_refused_as_code(tmp_path, loader, kind, name):
    marker = tmp_path / "ran"
    path = _write(kind, tmp_path / "teacher.pth", marker)
    with pytest.raises(ConfigError) as err:
        loader(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: refused: the checkpoint holds code, not tensors (its pickle would load ")
    assert name in msg and "weights_only=True" in msg and "\n" not in msg, msg
    assert "weights_only=False" not in msg and "truncated" not in msg and "trusted source" not in msg, msg
    assert not marker.exists(), "the pickle's code ran"


def test_a_cut_file_is_still_reported_as_such(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ConfigError, match=r"cannot read the checkpoint \(truncated, corrupt or not a torch file"):
        read_checkpoint(cut)
    assert load_tensor_state_dict(good)["w"].tolist() == [1.0, 1.0]
