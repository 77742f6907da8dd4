"""Where one training step's time goes: ``python -m ld_core bench profile``, and the step's convolution bound.

Usage::

    python -m ld_core bench profile [--scale {embedded,paper,tiny}] [--image-size W H] [--batch B]
                                    [--steps N] [--warmup W] [--threads T] [--gt-per-image K] [--seed S]
                                    [--variant {plain,ld,fastplain,fast,stock} ...] [--out FILE.json]

CPU only. The variants, weights and synthetic batch are those of ``bench train``
(:mod:`ld_core.commands.bench_variants`; ``ld`` is its ``ours``). Per variant: W warm-up steps (the first one records every convolution's shapes with
forward hooks), N timed steps (median = the step time), N steps under ``torch.profiler`` (CPU, with shapes and
dtypes). Each profiled op's self time goes to the first category found walking up from it to the step:

* convolutions: ``aten::conv*``, ``convolution``, ``mkldnn_convolution``, ``convolution_backward``, ...;
* casts: ``aten::to``/``_to_copy``/``copy_``/autocast casts that change a dtype (counted once per cast);
* other ops: the rest, named by the optimizer call or backward node they run in, else by their outermost op;
* Python/framework: the profiled step's wall time minus the time inside ops (Python, mmengine, the autograd
  engine, the profiler's own cost).

Bound: the step's convolution FLOPs (forward ``2*Cin/groups*Cout*kh*kw*Hout*Wout*N``, backward one such product
for the weight gradient and one for the input gradient where the convolution trains) over this machine's
convolution throughput, timed on the step's largest convolutions (fwd+bwd where they train) in the step's dtype
and memory format with the same threads: the time the step's convolutions alone would take at that rate.

JSON (``--out``) keys: ``bench train``'s environment keys (``device``, ``torch``, ...), ``cpu`` ({model, flags,
capability, mkldnn_bf16: what ``fast_bf16`` says, bf16_hardware: AVX512-BF16 or AMX}), ``load_avg`` ({start,
end}: 1/5/15-minute load), ``scale``, ``image_size``, ``batch``, ``steps``, ``warmup``, ``gt_per_image``,
``seed``, ``variants`` ({name: {bench_variant, mixed_precision, channels_last, median_step_s, step_times_s,
profiled_median_step_s, profiled_step_ms, profiler_ms_per_step (profiled minus timed median), ms_per_step
({convolutions, casts, other, python}), shares (same keys, fractions of the profiled step, summing to 1),
other_top ([{name, ms_per_step, share}], 5), other_rest_share, ops_per_step, casts_per_step, casts_by_dtype
({"src->dst": {per_step, ms_per_step}}), conv ({calls_per_step, forward_gflop, backward_gflop, gflop,
gflop_by_dtype, throughput_gflops, measured ([{shape, calls_per_step, gflop, ms, gflops}]), bound_ms,
step_over_bound})}}).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmdet.utils import register_all_modules
from mmengine.optim import OptimWrapper
from torch.profiler import ProfilerActivity, profile, record_function

from .. import models  # noqa: F401  (registers LocalizationDistiller, LDGFLHead, the LD loss)
from ..engine.mixed_precision import fast_bf16
from ..errors import ConfigError
from ..files import atomic_write_json
from ..threads import pin_threads
from .bench_variants import SCALES, SGD, build_variant, environment, make_batch, model_configs, release
from .bench_variants import VARIANTS as BENCH_VARIANTS, check_arguments as check_bench_arguments
from .bench_variants import write_shared_weights
from .fps import device_name

VARIANTS = {"plain": "plain", "ld": "ours", "fastplain": "fastplain", "fast": "fast", "stock": "stock"}
DEFAULT_VARIANTS = ("plain", "ld", "fastplain", "fast")
STEP_RANGE = "ld_core::profile_step"
CATEGORIES = ("convolutions", "casts", "other", "python")
CONV_OPS = frozenset("aten::" + n for n in (
    "conv1d", "conv2d", "conv3d", "convolution", "_convolution", "convolution_overrideable", "mkldnn_convolution",
    "convolution_backward", "convolution_backward_overrideable", "_slow_conv2d_forward", "_slow_conv2d_backward",
    "thnn_conv2d", "slow_conv_dilated2d", "_nnpack_spatial_convolution", "conv_transpose2d",
    "slow_conv_transpose2d", "cudnn_convolution", "_mps_convolution")) | {"torchvision::deform_conv2d"}
CAST_OPS = frozenset("aten::" + n for n in (
    "to", "_to_copy", "copy_", "_autocast_to_reduced_precision", "_autocast_to_full_precision", "type_as"))
AUTOGRAD_NODE = "autograd::engine::evaluate_function: "
NOT_OPS = ("autograd::", "torch::autograd::", "ld_core::", "Optimizer.", "profiler::")
TOP_OTHER = 5
MEASURED_CONVS = 3      # distinct convolution shapes timed for the throughput: the largest by FLOPs per step
CONV_REPEATS = (2, 5)   # untimed, timed repeats of each (median)
DTYPE_NAMES = {"float": "float32", "c10::BFloat16": "bfloat16", "c10::Half": "float16", "double": "float64",
               "unsigned char": "uint8", "signed char": "int8", "long int": "int64", "int": "int32", "bool": "bool"}


# ------------------------------------------------------------------------------------ convolution shapes
def _models(model) -> list:
    """The detector and its teacher, which is not a submodule (``teacher`` here, ``teacher_model`` in mmdet)."""
    found = [model]
    for name in ("teacher", "teacher_model"):
        other = getattr(model, name, None)
        if other is not None and all(other is not m for m in found):
            found.append(other)
    return found


def record_convolutions(model):
    """Forward hooks on every ``nn.Conv2d`` and mmcv deformable convolution of the detector and its teacher;
    returns (records, remove): records maps a shape key to its call count."""
    kinds: tuple = (torch.nn.Conv2d,)
    try:
        from mmcv.ops import DeformConv2d, ModulatedDeformConv2d

        kinds += (DeformConv2d, ModulatedDeformConv2d)
    except ImportError:
        pass
    records: Counter = Counter()

    def hook(module, inputs, output):
        x = inputs[0]
        w = module.weight
        trains = torch.is_grad_enabled() and w.requires_grad
        key = dict(kind="conv2d" if isinstance(module, torch.nn.Conv2d) else "deform_conv2d",
                   n=int(x.shape[0]), cin=int(x.shape[1]), h=int(x.shape[2]), w=int(x.shape[3]),
                   cout=int(w.shape[0]), kh=int(w.shape[2]), kw=int(w.shape[3]), hout=int(output.shape[2]),
                   wout=int(output.shape[3]), stride=tuple(module.stride), padding=tuple(module.padding),
                   dilation=tuple(module.dilation), groups=int(module.groups), dtype=str(output.dtype)[6:],
                   channels_last=bool(output.is_contiguous(memory_format=torch.channels_last)
                                      and not output.is_contiguous()),
                   weight_grad=bool(trains), input_grad=bool(torch.is_grad_enabled() and x.requires_grad))
        records[tuple(sorted(key.items()))] += 1

    handles = [m.register_forward_hook(hook) for part in _models(model) for m in part.modules()
               if isinstance(m, kinds)]
    return records, lambda: [h.remove() for h in handles]


def conv_flops(shape: dict) -> tuple:
    """(forward, backward) FLOPs of one call: a multiply and an add per weight and output element; the backward
    one forward's worth for the weight gradient and one for the input gradient, where each is needed."""
    fwd = 2 * shape["cin"] // shape["groups"] * shape["cout"] * shape["kh"] * shape["kw"] * shape["hout"] \
        * shape["wout"] * shape["n"]
    return fwd, fwd * (int(shape["weight_grad"]) + int(shape["input_grad"]))


def time_convolution(shape: dict) -> float:
    """Median seconds of one call of this convolution (fwd, + bwd where it trains), in its dtype and layout."""
    dtype = getattr(torch, shape["dtype"])
    fmt = torch.channels_last if shape["channels_last"] else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape["n"], shape["cin"], shape["h"], shape["w"], generator=g).to(dtype=dtype, memory_format=fmt)
    w = (0.1 * torch.randn(shape["cout"], shape["cin"] // shape["groups"], shape["kh"], shape["kw"], generator=g)) \
        .to(dtype=dtype, memory_format=fmt)
    x.requires_grad_(shape["input_grad"])
    w.requires_grad_(shape["weight_grad"])
    backward = shape["input_grad"] or shape["weight_grad"]
    times = []
    for i in range(sum(CONV_REPEATS)):
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            out = F.conv2d(x, w, None, shape["stride"], shape["padding"], shape["dilation"], shape["groups"])
            if backward:
                out.backward(torch.ones_like(out))
        if i >= CONV_REPEATS[0]:
            times.append(time.perf_counter() - start)
        x.grad = w.grad = None
    return statistics.median(times)


def conv_bound(records: Counter, step_s: float) -> dict:
    """The step's convolution FLOPs and the time they would take at the measured throughput."""
    shapes = [(dict(key), calls) for key, calls in records.items()]
    fwd = sum(conv_flops(s)[0] * c for s, c in shapes)
    bwd = sum(conv_flops(s)[1] * c for s, c in shapes)
    by_dtype: Dict[str, float] = defaultdict(float)
    for s, c in shapes:
        by_dtype[s["dtype"]] += sum(conv_flops(s)) * c / 1e9
    timeable = sorted((sc for sc in shapes if sc[0]["kind"] == "conv2d"),
                      key=lambda sc: -sum(conv_flops(sc[0])) * sc[1])[:MEASURED_CONVS]
    measured, flops, seconds = [], 0, 0.0
    for shape, calls in timeable:
        one = time_convolution(shape)
        f = sum(conv_flops(shape))
        flops, seconds = flops + f * calls, seconds + one * calls
        label = (f"{shape['n']}x{shape['cin']}x{shape['h']}x{shape['w']} -> {shape['cout']} k{shape['kh']}x"
                 f"{shape['kw']} s{shape['stride'][0]} g{shape['groups']} {shape['dtype']}"
                 f"{' NHWC' if shape['channels_last'] else ''} {'fwd+bwd' if conv_flops(shape)[1] else 'fwd'}")
        measured.append(dict(shape=label, calls_per_step=calls, gflop=f / 1e9, ms=1e3 * one, gflops=f / one / 1e9))
    throughput = flops / seconds if seconds > 0 else 0.0
    bound = (fwd + bwd) / throughput if throughput > 0 else float("nan")
    return dict(calls_per_step=sum(records.values()), forward_gflop=fwd / 1e9, backward_gflop=bwd / 1e9,
                gflop=(fwd + bwd) / 1e9, gflop_by_dtype=dict(by_dtype), throughput_gflops=throughput / 1e9,
                measured=measured, bound_ms=1e3 * bound, step_over_bound=step_s / bound)


# ---------------------------------------------------------------------------------------- profile trees
def _is_op(evt) -> bool:
    return "::" in evt.name and not evt.name.startswith(NOT_OPS)


def _dtype(name: str) -> str:
    return DTYPE_NAMES.get(name, name)


def _cast_pair(evt) -> Optional[str]:
    """'src->dst' if this op or an op below it copies between dtypes (``copy_(dst, src)``), else None."""
    if evt.name not in CAST_OPS:
        return None
    dtypes = list(getattr(evt, "input_dtypes", None) or [])
    if evt.name == "aten::copy_" and len(dtypes) >= 2 and dtypes[0] and dtypes[1] and dtypes[0] != dtypes[1]:
        return f"{_dtype(dtypes[1])}->{_dtype(dtypes[0])}"
    for child in evt.cpu_children:
        pair = _cast_pair(child)
        if pair:
            return pair
    return None


def classify_step(step) -> dict:
    """Self times (us) of one profiled step by category, of other ops by name (an optimizer call or backward
    node as one name, else the outermost op) and of casts by dtype pair; the casts' and ops' numbers."""
    times: Dict[str, float] = defaultdict(float)
    by_name: Dict[str, Counter] = dict(other=Counter(), casts=Counter())
    casts: Counter = Counter()
    ops = 0

    def walk(evt, category: Optional[str], group: Optional[str], scope: Optional[str]) -> None:
        nonlocal ops
        for child in evt.cpu_children:
            cat, grp, scope_ = category, group, scope
            if child.name.startswith("Optimizer."):  # Optimizer.step#SGD.step: "optimizer step"
                scope_ = "optimizer " + child.name.split("#")[0].split(".", 1)[1]
            elif child.name.startswith(AUTOGRAD_NODE) and scope_ is None:  # a backward node: its own name
                scope_ = child.name[len(AUTOGRAD_NODE):].replace("torch::autograd::", "")
            if _is_op(child):
                ops += 1
                pair = _cast_pair(child) if cat != "casts" else None
                if pair:
                    cat, grp = "casts", pair
                    casts[pair] += 1
                elif cat != "casts" and child.name in CONV_OPS:
                    cat = "convolutions"
                elif cat is None:
                    cat, grp = "other", scope_ or child.name
            if cat is not None:
                times[cat] += child.self_cpu_time_total
                if cat in ("other", "casts"):
                    by_name[cat][grp] += child.self_cpu_time_total
            walk(child, cat, grp, scope_)

    walk(step, None, None, None)
    return dict(times=times, other=by_name["other"], cast_us=by_name["casts"], casts=casts, ops=ops)


def summarise_profile(events, steps: int) -> dict:
    """Per-step means over the profiled steps: ms and shares by category, the top other ops, casts."""
    ranges = [e for e in events if e.name == STEP_RANGE and e.cpu_parent is None]
    if len(ranges) != steps:
        raise RuntimeError(f"profiler recorded {len(ranges)} step ranges, expected {steps}")
    total_us, times, other, casts, cast_us, ops = 0.0, Counter(), Counter(), Counter(), Counter(), 0
    step_ms = []
    for step in ranges:
        res = classify_step(step)
        wall = step.cpu_time_total
        step_ms.append(wall / 1e3)
        total_us += wall
        times.update(res["times"])
        other.update(res["other"])
        casts.update(res["casts"])
        cast_us.update(res["cast_us"])
        ops += res["ops"]
    inside = sum(times[c] for c in ("convolutions", "casts", "other"))
    times["python"] = max(0.0, total_us - inside)
    shares = {c: times[c] / total_us for c in CATEGORIES}
    top = other.most_common(TOP_OTHER)
    return dict(profiled_median_step_s=statistics.median(step_ms) / 1e3, profiled_step_ms=step_ms,
                ms_per_step={c: times[c] / steps / 1e3 for c in CATEGORIES}, shares=shares,
                other_top=[dict(name=n, ms_per_step=t / steps / 1e3, share=t / total_us) for n, t in top],
                other_rest_share=(times["other"] - sum(t for _, t in top)) / total_us,
                ops_per_step=ops / steps, casts_per_step=sum(casts.values()) / steps,
                casts_by_dtype={k: dict(per_step=v / steps, ms_per_step=cast_us[k] / steps / 1e3)
                                for k, v in casts.most_common()})


# ------------------------------------------------------------------------------------------------ driver
def profile_variant(model, batch: dict, warmup: int, steps: int) -> dict:
    """Warm-up (the first step records convolution shapes), timed steps, profiled steps; the numbers."""
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), **SGD))
    records, remove = record_convolutions(model)
    try:
        model.train_step(batch, optim)
    finally:
        remove()
    for _ in range(warmup - 1):
        model.train_step(batch, optim)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_step(batch, optim)
        times.append(time.perf_counter() - start)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # kineto's start/stop lines on stderr: errors only
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            with record_function(STEP_RANGE):
                model.train_step(batch, optim)
    median = statistics.median(times)
    res = dict(median_step_s=median, step_times_s=times)
    res.update(summarise_profile(prof.events(), steps))
    res["profiler_ms_per_step"] = 1e3 * (res["profiled_median_step_s"] - median)  # its cost, inside "python"
    res["conv"] = conv_bound(records, median)
    return res


def cpu_info() -> dict:
    """CPU model, its SIMD/matrix flags that matter for convolutions, torch's capability and bf16 support."""
    flags: List[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = [f for f in line.split(":", 1)[1].split()
                         if f.startswith(("avx", "amx", "fma")) or f in ("sse4_2", "f16c")]
                break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    native = any(getattr(torch.cpu, query, lambda: False)()
                 for query in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return dict(model=device_name("cpu"), flags=flags, capability=capability, mkldnn_bf16=fast_bf16("cpu"),
                bf16_hardware=bool(native))


def run_profile(scale: str = "embedded", image_size: Optional[tuple] = None, batch: int = 8, steps: int = 5,
                warmup: int = 2, threads: Optional[int] = None, gt_per_image: int = 12, seed: int = 0,
                variants=DEFAULT_VARIANTS) -> dict:
    """Build and profile the variants on the CPU; the result dict (see the module docstring for its keys)."""
    check_arguments(scale, image_size, batch, steps, warmup, threads, gt_per_image, variants)
    if threads:
        pin_threads(threads)
    register_all_modules(init_default_scope=True)
    by_name = {v.name: v for v in BENCH_VARIANTS}
    load_start = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ld_profile_") as tmp:
        configs = model_configs(scale, Path(tmp))
        width, height = image_size or configs["scale"]["input_size"]
        student_state = write_shared_weights(configs, seed)
        data = make_batch(batch, width, height, gt_per_image, configs["plain"]["bbox_head"]["num_classes"], seed)
        for name in dict.fromkeys(variants):
            variant = by_name[VARIANTS[name]]
            release("cpu")
            model = build_variant(variant, configs, student_state, "cpu")
            res = dict(bench_variant=variant.name, mixed_precision=variant.mixed_precision,
                       channels_last=any(p.dim() == 4 and not p.is_contiguous() for p in model.parameters()))
            res.update(profile_variant(model, data, warmup, steps))
            results[name] = res
            del model
        release("cpu")
    return dict(environment("cpu"), cpu=cpu_info(), load_avg=dict(start=load_start, end=os.getloadavg()),
                scale=scale, image_size=[int(width), int(height)], batch=batch, steps=steps, warmup=warmup,
                gt_per_image=gt_per_image, seed=seed, variants=results)


def check_arguments(scale, image_size, batch, steps, warmup, threads, gt_per_image, variants) -> None:
    """One-line ``ConfigError`` on a bad argument."""
    check_bench_arguments(scale, image_size, batch, steps, warmup, "cpu", threads, gt_per_image)
    if warmup < 1:
        raise ConfigError(f"--warmup must be at least 1 for a profile (its first step records the convolutions), "
                          f"got {warmup}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"--variant must be among {', '.join(VARIANTS)}, got {', '.join(unknown) or 'none'}")


# ------------------------------------------------------------------------------------------------ report
def format_report(res: dict) -> str:
    """One screen: per variant the step, its shares, the top other ops, casts and the convolution bound."""
    w, h = res["image_size"]
    load = " ".join(f"{x:.2f}" for x in res["load_avg"]["start"])
    lines = [f"LD training-step profile: scale {res['scale']}, {w}x{h}, batch {res['batch']}, {res['steps']} "
             f"timed + {res['steps']} profiled steps after {res['warmup']} warm-up, threads {res['threads']}",
             f"{res['device']} | {res['cpu']['capability']} | bf16 hardware (AVX512-BF16/AMX): "
             f"{res['cpu']['bf16_hardware']} | oneDNN bf16 (fast_bf16): {res['cpu']['mkldnn_bf16']} | load {load} "
             f"| torch {res['torch']}"]
    for name, r in res["variants"].items():
        s, ms, c = r["shares"], r["ms_per_step"], r["conv"]
        lines += ["", f"{name} ({r['bench_variant']}{', bf16 autocast' if r['mixed_precision'] else ''}"
                      f"{', NHWC' if r['channels_last'] else ''}): step {1e3 * r['median_step_s']:.1f} ms "
                      f"(profiled {1e3 * r['profiled_median_step_s']:.1f} ms: {r['ops_per_step']:.0f} ops, "
                      f"the profiler's cost ~{r['profiler_ms_per_step']:.1f} ms in python)"]
        lines.append("  " + " | ".join(f"{cat} {100 * s[cat]:.1f} % ({ms[cat]:.1f} ms)" for cat in CATEGORIES))
        lines.append("  other: " + ", ".join(f"{o['name'].replace('aten::', '')} {100 * o['share']:.1f} %"
                                             for o in r["other_top"]) + f", rest {100 * r['other_rest_share']:.1f} %")
        pairs = list(r["casts_by_dtype"].items())
        rest = sum(v["per_step"] for _, v in pairs[4:])
        lines.append(f"  casts per step: {r['casts_per_step']:.0f} (" + ", ".join(
            f"{k} {v['per_step']:.0f} in {v['ms_per_step']:.1f} ms" for k, v in pairs[:4])
            + (f", {rest:.0f} other" if pairs[4:] else "") + ")")
        lines.append(f"  convolutions: {c['calls_per_step']} calls, {c['gflop']:.2f} GFLOP per step (fwd "
                     f"{c['forward_gflop']:.2f}, bwd {c['backward_gflop']:.2f}), measured "
                     f"{c['throughput_gflops']:.1f} GFLOP/s on the {len(c['measured'])} largest")
        lines.append(f"  convolutions alone would take {c['bound_ms']:.1f} ms; the step takes "
                     f"{1e3 * r['median_step_s']:.1f} ms ({c['step_over_bound']:.2f}x)")
    lines += ["", "shares are of the profiled step (the profiler's own cost is in python); "
                  "other = ops that are neither convolutions nor casts"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m ld_core bench profile ...``."""
    parser.add_argument("--scale", choices=SCALES, default="embedded",
                        help="model sizes (configs/scales/<scale>.yaml)")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), help="default: the scale's input_size")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps, then as many profiled steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (at least 1)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--gt-per-image", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", nargs="+", action="extend", choices=tuple(VARIANTS),
                        help=f"default: {' '.join(DEFAULT_VARIANTS)}; ld = bench train's 'ours'; fast/fastplain = "
                             "bf16 autocast convolutions (repeatable)")
    parser.add_argument("--out", help="also write the results as JSON")


def run(args: argparse.Namespace) -> int:
    res = run_profile(scale=args.scale, image_size=args.image_size, batch=args.batch, steps=args.steps,
                      warmup=args.warmup, threads=args.threads, gt_per_image=args.gt_per_image, seed=args.seed,
                      variants=args.variant or DEFAULT_VARIANTS)
    print(format_report(res))
    if args.out:
        atomic_write_json(args.out, res)
        print(f"[bench] wrote {args.out}")
    return 0
