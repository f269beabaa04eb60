"""Wrong answers for lesson 13's checks (training days, KV-cache bytes, WEAT's d, int8 rows, the ECE)."""

import torch
import torch.nn.functional as F

from utils import calibration, costs, quantization, weat

from . import WrongAnswer


def _weat(x, y, a, b, normalise=True, unbiased=False, spread="both"):
    if normalise:
        x, y, a, b = (F.normalize(t, dim=1) for t in (x, y, a, b))
    sx = (x @ a.T).mean(1) - (x @ b.T).mean(1)
    sy = (y @ a.T).mean(1) - (y @ b.T).mean(1)
    pool = torch.cat([sx, sy]) if spread == "both" else sx
    return ((sx.mean() - sy.mean()) / pool.std(unbiased=unbiased)).item()


def _quantize(weight, steps=127, rounding=torch.round, dim=1, per_tensor=False, low=-127):
    largest = weight.abs().max().expand(weight.shape[0]) if per_tensor else weight.abs().amax(dim=dim)
    scale = largest / steps
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    spread = scale[None, :] if dim == 0 else scale[:, None]
    return rounding(weight / spread).clamp(low, 127).to(torch.int8), scale


def _ece(confidence, correct, bins=15, weighted=True, signed=False):
    which = (confidence * bins).long().clamp(max=bins - 1)
    total, gaps = 0.0, []
    for m in range(bins):
        inside = which == m
        if inside.any():
            gap = correct[inside].double().mean() - confidence[inside].mean()
            gap = gap if signed else gap.abs()
            gaps.append(gap.item())
            total += inside.double().mean().item() * gap.item()
    return total if weighted else sum(gaps) / len(gaps)


WRONG = [
    WrongAnswer("13.1", "2ND", lambda n, d, k, p, m: 2 * n * d / (k * p * m) / 86_400, "forward pass alone"),
    WrongAnswer("13.1", "no mfu", lambda n, d, k, p, m: 6 * n * d / (k * p) / 86_400, "mfu was left out"),
    WrongAnswer("13.1", "times mfu", lambda n, d, k, p, m: 6 * n * d * m / (k * p) / 86_400, "multiplied by mfu"),
    WrongAnswer("13.1", "one device", lambda n, d, k, p, m: 6 * n * d / (p * m) / 86_400, "one device"),
    WrongAnswer("13.1", "seconds", lambda n, d, k, p, m: 6 * n * d / (k * p * m), "that is seconds"),
    WrongAnswer("13.1", "hours", lambda n, d, k, p, m: 6 * n * d / (k * p * m) / 3600, "that is hours"),
    WrongAnswer("13.1", "calls training_flops",
                lambda n, d, k, p, m: costs.training_flops(n, d) / (k * p * m) / 86_400, "training_flops"),
    WrongAnswer("13.1", "calls run_cost",
                lambda n, d, k, p, m: costs.run_cost(6 * n * d, k, p, m).seconds / 86_400, "run_cost"),
    WrongAnswer("13.2", "keys only", lambda L, G, h, T, b=2, n=1: L * G * h * T * b * n, "factor of 2"),
    WrongAnswer("13.2", "no batch", lambda L, G, h, T, b=2, n=1: 2 * L * G * h * T * b, "batch was left out"),
    WrongAnswer("13.2", "numbers", lambda L, G, h, T, b=2, n=1: 2 * L * G * h * T * n, "count of numbers"),
    WrongAnswer("13.2", "bits", lambda L, G, h, T, b=2, n=1: 16 * L * G * h * T * b * n, "bits"),
    WrongAnswer("13.2", "tokens squared", lambda L, G, h, T, b=2, n=1: 2 * L * G * h * T * T * b * n, "square"),
    WrongAnswer("13.2", "GiB", lambda L, G, h, T, b=2, n=1: 2 * L * G * h * T * b * n / 2**30, "GiB"),
    WrongAnswer("13.2", "no defaults", lambda L, G, h, T, b, n: 2 * L * G * h * T * b * n, "missing"),
    WrongAnswer("13.2", "calls utils.costs", lambda L, G, h, T, b=2, n=1: costs.kv_cache_bytes(L, G, h, T, b, n),
                "kv_cache_bytes"),
    WrongAnswer("13.3", "sample std", lambda x, y, a, b: _weat(x, y, a, b, unbiased=True), "sample standard"),
    WrongAnswer("13.3", "dot products", lambda x, y, a, b: _weat(x, y, a, b, normalise=False), "dot products"),
    WrongAnswer("13.3", "spread of X", lambda x, y, a, b: _weat(x, y, a, b, spread="x"), "over X alone"),
    WrongAnswer("13.3", "Y minus X", lambda x, y, a, b: -_weat(x, y, a, b), "sign is flipped"),
    WrongAnswer("13.3", "calls utils.weat", lambda x, y, a, b: weat.effect_size(x, y, a, b), "effect_size"),
    WrongAnswer("13.3", "uses association",
                lambda x, y, a, b: weat.association(x, a, b).mean().item(), "association"),
    WrongAnswer("13.4", "per tensor", lambda w: _quantize(w, per_tensor=True), "per tensor"),
    WrongAnswer("13.4", "per column", lambda w: _quantize(w, dim=0), "per column"),
    WrongAnswer("13.4", "max / 128", lambda w: _quantize(w, steps=128, low=-128), "max / 128"),
    WrongAnswer("13.4", "max / 255", lambda w: _quantize(w, steps=255, low=-128), "max / 255"),
    WrongAnswer("13.4", "cast truncates", lambda w: (_quantize(w, rounding=lambda t: t)[0], _quantize(w)[1]),
                "truncated"),
    WrongAnswer("13.4", "floor", lambda w: _quantize(w, rounding=torch.floor), "floored"),
    WrongAnswer("13.4", "q as float", lambda w: (torch.round(w / _quantize(w)[1][:, None]), _quantize(w)[1]),
                "torch.int8"),
    WrongAnswer("13.4", "calls quantize_int8", lambda w: quantization.quantize_int8(w), "quantize_int8"),
    WrongAnswer("13.4", "torch's quantiser", lambda w: (torch.quantize_per_channel(
        w, _quantize(w)[1].double(), torch.zeros(w.shape[0], dtype=torch.long), 0, torch.qint8).int_repr(),
        _quantize(w)[1]), "torch.quantize_per_channel"),
    WrongAnswer("13.5", "unweighted bins", lambda c, r, bins=15: _ece(c, r, bins, weighted=False), "counted the same"),
    WrongAnswer("13.5", "signed gaps", lambda c, r, bins=15: _ece(c, r, bins, signed=True), "with their signs"),
    WrongAnswer("13.5", "always 15 bins", lambda c, r, bins=15: _ece(c, r, 15), "whatever `bins` says"),
    WrongAnswer("13.5", "one bin", lambda c, r, bins=15: abs(r.double().mean().item() - c.mean().item()),
                "one bin for everything"),
    WrongAnswer("13.5", "calls utils.calibration",
                lambda c, r, bins=15: calibration.reliability(c, r, bins).ece, "reliability"),
]
