"""Lightweight Temporal Attention Encoder (L-TAE, Garnot & Landrieu 2020) for image time series.

A shared L-TAE runs at every pixel of a ``(B, T, C, h, w)`` feature series: each of ``n_heads`` heads
has one learnt query, keys come from the (normalised, projected, day-of-year encoded) inputs, and the
values are the head's channel group. Padded dates get exactly zero attention weight; a pixel whose
dates are all padded gets all-zero weights (and a finite output) instead of NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional


def sinusoidal_encoding(positions: Tensor, *, dim: int, period: float) -> Tensor:
    """Transformer sinusoidal encoding of positions (here: day of year).

    Args:
        positions: ``(B, T)`` positions.
        dim: Encoding width.
        period: The ``T`` of ``pos / T^(2i/dim)``.

    Returns:
        ``(B, T, dim)`` float tensor: sine on even, cosine on odd channels.
    """
    index = torch.arange(dim, device=positions.device)
    denom = torch.pow(
        torch.tensor(period, device=positions.device), 2.0 * torch.div(index, 2, rounding_mode="floor") / dim
    )
    angles = positions.to(torch.float32)[..., None] / denom
    return torch.where(index % 2 == 0, torch.sin(angles), torch.cos(angles))


class MaskedGroupNorm(nn.Module):
    """GroupNorm of a ``(N, T, C)`` sequence over each channel group and the *valid* dates only.

    ``nn.GroupNorm`` on ``(N, C, T)`` (the L-TAE input norm) pools its statistics over every date, so
    padded dates would shift them; here they are excluded. A sequence without valid dates gives zeros.
    """

    def __init__(self, groups: int, channels: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Normalise ``x`` ``(N, T, C)`` over the dates ``valid`` ``(N, T)`` marks; float32 out."""
        n, t, c = x.shape
        grouped = x.float().view(n, t, self.groups, c // self.groups)  # statistics in float32 under AMP
        w = valid.to(torch.float32)[:, :, None, None]
        count = (w.sum(dim=1, keepdim=True) * (c // self.groups)).clamp(min=1.0)
        mean = (grouped * w).sum(dim=(1, 3), keepdim=True) / count
        var = (((grouped - mean) * w) ** 2).sum(dim=(1, 3), keepdim=True) / count
        normed = ((grouped - mean) * torch.rsqrt(var + self.eps) * w).view(n, t, c)
        return normed * self.weight + self.bias


def masked_softmax(scores: Tensor, pad: Tensor) -> Tensor:
    """Softmax over the last axis that gives zero weight where ``pad`` is True (all-padded rows: all 0)."""
    all_pad = pad.all(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(pad, float("-inf")).masked_fill(all_pad, 0.0), dim=-1)
    return weights.masked_fill(pad, 0.0)


class LTAE(nn.Module):
    """L-TAE mapping a ``(B, T, C, h, w)`` series to a ``(B, out, h, w)`` map and attention masks.

    Args:
        in_channels: Channels of the input series.
        out_channels: Channels of the output map.
        n_heads: Attention heads.
        d_model: Width the inputs are projected to (divisible by ``n_heads``).
        d_k: Key/query width.
        dropout: Dropout after the output MLP.
        period: Period of the sinusoidal day-of-year encoding.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        out_channels: int,
        n_heads: int,
        d_model: int,
        d_k: int,
        dropout: float,
        period: float,
    ) -> None:
        super().__init__()
        self.n_heads, self.d_model, self.d_k, self.period = n_heads, d_model, d_k, period
        self.in_norm = MaskedGroupNorm(n_heads, in_channels)
        self.in_proj = nn.Linear(in_channels, d_model)
        self.query = nn.Parameter(torch.empty(n_heads, d_k))
        self.key = nn.Linear(d_model, n_heads * d_k)
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / d_k))
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.mlp = nn.Sequential(nn.Linear(d_model, out_channels), nn.BatchNorm1d(out_channels), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.GroupNorm(n_heads, out_channels)

    def forward(self, x: Tensor, *, doy: Tensor, pad: Tensor) -> tuple[Tensor, Tensor]:
        """Encode the series.

        Args:
            x: ``(B, T, C, h, w)`` features.
            doy: ``(B, T)`` day of year of each date.
            pad: ``(B, T)`` bool, True at padded dates.

        Returns:
            The ``(B, out, h, w)`` map and the ``(B, n_heads, T, h, w)`` attention weights.
        """
        b, t, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        valid = (~pad)[:, None].expand(b, h * w, t).reshape(b * h * w, t)
        seq = self.in_norm(seq, valid)
        seq = self.in_proj(seq)
        pe = sinusoidal_encoding(doy, dim=self.d_model // self.n_heads, period=self.period).to(seq.dtype)
        pe = pe.repeat(1, 1, self.n_heads)  # same encoding for every head's channel group
        seq = (seq.view(b, h * w, t, self.d_model) + pe[:, None]).view(b * h * w, t, self.d_model)

        keys = self.key(seq).view(b * h * w, t, self.n_heads, self.d_k)
        scores = torch.einsum("ntkd,kd->nkt", keys, self.query) / math.sqrt(self.d_k)
        scores = scores.view(b, h * w, self.n_heads, t)
        attn = masked_softmax(scores, pad[:, None, None, :]).view(b * h * w, self.n_heads, t)

        values = seq.view(b * h * w, t, self.n_heads, self.d_model // self.n_heads)
        out = torch.einsum("nkt,ntkd->nkd", attn, values).reshape(b * h * w, self.d_model)
        out = self.out_norm(self.dropout(self.mlp(out)))
        out = out.view(b, h, w, -1).permute(0, 3, 1, 2)
        attn = attn.view(b, h, w, self.n_heads, t).permute(0, 3, 4, 1, 2)
        return out, attn


def aggregate_by_attention(x: Tensor, attn: Tensor) -> Tensor:
    """U-TAE temporal aggregation: attention-weighted sum over dates, one head per channel group.

    Args:
        x: ``(B, T, C, H, W)`` features (C divisible by the number of heads).
        attn: ``(B, n_heads, T, h, w)`` attention weights at a resolution <= ``(H, W)``; they are
            resampled bilinearly to ``(H, W)``.

    Returns:
        ``(B, C, H, W)``: channel group ``k`` is the ``attn[:, k]``-weighted sum of its dates.
    """
    b, t, c, hh, ww = x.shape
    heads = attn.shape[1]
    if attn.shape[-2:] != (hh, ww):
        attn = functional.interpolate(attn.flatten(1, 2), size=(hh, ww), mode="bilinear", align_corners=False)
        attn = attn.view(b, heads, t, hh, ww)
    groups = x.view(b, t, heads, c // heads, hh, ww)
    weights = attn.transpose(1, 2)[:, :, :, None]  # (B, T, heads, 1, H, W)
    return (weights * groups).sum(dim=1).reshape(b, c, hh, ww)
