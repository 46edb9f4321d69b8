"""The local deep stage: patch store, datasets, models, training, sliding-window inference.

Importing :mod:`gee_fusion` never imports torch; importing :mod:`gee_fusion.deep` may.

Contracts shared by every part of this package (see ``docs/deep.md``):

* A **batch** is a ``dict[str, torch.Tensor]``. For each sensor ``s`` in ``("S2", "S1")`` that an
  experiment uses: ``batch[s]`` is ``(B, T, C, H, W)`` float32 (normalised, missing pixels = 0),
  ``batch[f"{s}_doy"]`` is ``(B, T)`` int64 day of year of each date (1..366) and
  ``batch[f"{s}_pad"]`` is ``(B, T)`` bool, True where that date is missing (no valid pixel).
  Optional ``batch["prior"]``: ``(B, H, W)`` int64 class indices of an existing map (255 unknown).
  Training batches carry ``batch["label"]``: ``(B, H, W)`` int64, 0..K-1, 255 ignored.
* A **model** is a ``torch.nn.Module`` whose ``forward(batch)`` returns logits ``(B, K, H, W)``
  for any H, W that are multiples of ``model.size_divisor``; ``model.sensors`` names the sensors it reads.
"""
