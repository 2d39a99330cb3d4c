"""Native encoder-decoder models train in bfloat16 (the GPU presets' precision), here on the CPU:
forward and backward (with a padded input row) give a finite loss close to the fp32 one and
gradients that point the same way."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_models_common import build, make_batch

torch.set_num_threads(1)
# |loss_bf16 - loss_fp32| measured on this batch at seeds 0-2: transformer <= 4.6e-3 nats, evolved
# <= 1.6e-3, universal <= 6.1e-4 (bf16 keeps 8 mantissa bits); the bound is 4x the largest, 0.3%
# of the ~6.2-nat loss.
LOSS_TOL = 0.02
# min over parameters of the cosine between the bf16 and fp32 gradients: measured >= 0.987.
GRAD_COS = 0.95


@pytest.mark.parametrize("arch", ["transformer", "evolved", "universal"])
def test_bf16_forward_backward_matches_fp32(arch):
    model = build(arch)
    model.train()
    batch = make_batch("encdec")
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch["attention_mask"][0, -4:] = 0  # padding: the encoder's key mask and the cross-attention's
    loss32 = model(**batch).loss
    loss32.backward()
    grads32 = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.to(torch.bfloat16)
    loss16 = model(**batch).loss
    loss16.backward()
    assert torch.isfinite(loss16), f"{arch}: bf16 loss {loss16}"
    assert abs(loss16.item() - loss32.item()) < LOSS_TOL, (arch, loss16.item(), loss32.item())
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(p.grad).all(), name
        if grads32[name].abs().sum() > 0:
            cos = F.cosine_similarity(p.grad.float().flatten(), grads32[name].flatten(), dim=0)
            assert cos > GRAD_COS, f"{arch}: {name} bf16 gradient cosine {cos:.3f} with fp32"
