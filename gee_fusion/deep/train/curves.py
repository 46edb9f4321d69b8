"""Learning curves: per-epoch losses and validation metrics, drawn to a PNG after every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from gee_fusion.io.atomic import atomic_path

TRACKED = ("train_loss", "val_loss", "val_weighted_f1", "val_kappa", "val_miou")


class LearningCurves(L.Callback):
    """Collects :data:`TRACKED` at each validation end and redraws ``path`` (and a CSV beside it).

    The history is part of the checkpoint, so a resumed run continues the same curves.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record this epoch (its validation has run) and redraw; rank 0 only."""
        if not trainer.is_global_zero:
            return
        row = {"epoch": float(trainer.current_epoch)}
        epoch_metrics = dict(getattr(pl_module, "epoch_metrics", {}))
        for key in TRACKED:
            if key in epoch_metrics:
                row[key] = float(epoch_metrics[key])
            elif key in trainer.callback_metrics:
                row[key] = float(trainer.callback_metrics[key])
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        row["lr"] = float(lr)
        self.history = [h for h in self.history if h["epoch"] != row["epoch"]] + [row]
        self.write()

    def write(self) -> None:
        """Write the CSV and the PNG (atomically)."""
        from matplotlib.figure import Figure

        keys = ["epoch", *TRACKED, "lr"]
        with atomic_path(self.path.with_suffix(".csv")) as tmp:
            lines = [",".join(keys)] + [",".join(str(h.get(k, "")) for k in keys) for h in self.history]
            tmp.write_text("\n".join(lines) + "\n")
        fig = Figure(figsize=(10, 4))  # no pyplot: a notebook's backend and figures are left alone
        ax_loss, ax_score = fig.subplots(1, 2)
        epochs = [h["epoch"] + 1 for h in self.history]
        for key in ("train_loss", "val_loss"):
            ax_loss.plot(epochs, [h.get(key, float("nan")) for h in self.history], marker=".", label=key)
        for key in ("val_weighted_f1", "val_kappa", "val_miou"):
            ax_score.plot(epochs, [h.get(key, float("nan")) for h in self.history], marker=".", label=key)
        ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
        ax_score.set(xlabel="epoch", ylabel="score", title="Validation", ylim=(0, 1))
        for ax in (ax_loss, ax_score):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        with atomic_path(self.path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")

    def state_dict(self) -> dict[str, Any]:
        """Checkpointed history."""
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history of a resumed run."""
        self.history = [dict(h) for h in state_dict.get("history", [])]
