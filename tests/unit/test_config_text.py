"""Config.pretty_text memoized per content: formatted once, a changed config formatted anew."""
from __future__ import annotations


def test_pretty_text_is_formatted_once_per_content(monkeypatch):
    from mmengine.config import Config

    from ld_core.engine import config_text

    calls = []
    unpatched = Config.pretty_text
    monkeypatch.setattr(Config, "pretty_text", property(lambda self: calls.append(1) or unpatched.fget(self)))
    monkeypatch.setattr(config_text, "_MEMO", {})
    config_text.memoize_pretty_text()
    config_text.memoize_pretty_text()                 # idempotent: not wrapped twice
    cfg = Config(dict(model=dict(type="GFL", depth=18), work_dir="/tmp/a"))
    first = cfg.pretty_text
    assert cfg.pretty_text == first and Config(cfg.to_dict()).pretty_text == first and len(calls) == 1
    cfg.work_dir = "/tmp/b"
    assert "/tmp/b" in cfg.pretty_text and "/tmp/a" in first and len(calls) == 2
