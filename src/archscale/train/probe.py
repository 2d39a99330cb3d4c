"""The measured forward FLOPs of a run's model, cached: the torch FLOP counter over one probe batch
(models.flops.measured_flops) costs a forward pass plus the counter's setup per job."""

from __future__ import annotations

import os
from pathlib import Path

from archscale.io import write_json


def _flops_cache_key(model, probe: dict) -> str:
    """Everything the measured FLOPs depend on: the model's class and config, the probe batch's
    bytes, the library versions and the source of archscale's models."""
    import hashlib

    import torch
    import transformers

    h = hashlib.sha256()
    for part in (type(model).__qualname__, model.config.to_json_string(), torch.__version__, transformers.__version__):
        h.update(part.encode())
    for key in sorted(probe):
        h.update(key.encode() + str(tuple(probe[key].shape)).encode() + probe[key].numpy().tobytes())
    for src in sorted((Path(__file__).resolve().parents[1] / "models").glob("*.py")):
        h.update(src.read_bytes())
    return h.hexdigest()


def probe_flops(model, probe: dict) -> int:
    """measured_flops of one forward over `probe`, cached in ~/.cache/archscale/flops (or
    $ARCHSCALE_CACHE/flops): the probe costs a forward pass plus the counter's setup per job. A probe
    that draws random numbers (Reformer's LSH rotations, dropout) is never cached, because skipping
    it would shift the training RNG stream and change the run's bytes."""
    import torch

    from archscale.io import read_json
    from archscale.models.flops import measured_flops

    cache = Path(os.environ.get("ARCHSCALE_CACHE", Path.home() / ".cache" / "archscale")) / "flops"
    path = cache / f"{_flops_cache_key(model, probe)}.json"
    try:
        return int(read_json(path)["flops"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rng = torch.get_rng_state()
    flops = measured_flops(model, probe)
    if torch.equal(rng, torch.get_rng_state()):
        try:
            write_json(path, {"flops": flops})
        except OSError:
            pass  # a read-only home only loses the cache
    return flops
