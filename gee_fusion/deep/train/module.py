"""The Lightning module: one model, its loss, optimiser, schedule and confusion-matrix metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gee_fusion.classes import NO_LABEL
from gee_fusion.deep.models import InputShape, build_model
from gee_fusion.deep.models.spec import parse_model_spec
from gee_fusion.metrics.confusion import ConfusionMatrix

TEST_MATRIX = "test_confusion.json"


def dice_loss(logits: Tensor, target: Tensor, *, ignore_index: int = NO_LABEL) -> Tensor:
    """Soft multi-class Dice loss over labelled pixels (1 - mean Dice of the classes present)."""
    k = logits.shape[1]
    valid = target != ignore_index
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(torch.where(valid, target, 0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    dice = (2 * inter + 1e-6) / (denom + 1e-6)
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0


def confusion_counts(logits: Tensor, target: Tensor, k: int, *, ignore_index: int = NO_LABEL) -> Tensor:
    """(K, K) int64 counts (rows = reference) of the argmax predictions, on the logits' device."""
    valid = target != ignore_index
    pred = logits.argmax(dim=1)[valid]
    ref = target[valid]
    return torch.bincount(ref * k + pred, minlength=k * k).reshape(k, k)


class LandCoverModule(L.LightningModule):
    """Train / validate / test a land-cover model on patch batches.

    Every constructor argument is plain data (saved as hyper-parameters), so a checkpoint
    rebuilds the exact model and loads with ``torch.load(weights_only=True)``.

    Args:
        experiment: The experiment configuration as a JSON-ready dict.
        inputs: Sensor -> (times, channels) of the model inputs.
        class_names: Names of the K predicted classes (index order).
        class_codes: Codes written for each class index.
        class_weights: Loss weight per class.
        bands: Sensor -> band names the model was trained on.
        normalisation: Sensor -> band -> training statistics (mean, std, q02, q98) used to
            scale inputs, so inference scales new areas exactly as training did.
        recipe: The patch-export recipe that produced the training patches (predict reruns it;
            without it, the experiment's ``patches`` section is used).
    """

    class_weight: Tensor
    val_counts: Tensor
    test_counts: Tensor

    def __init__(
        self,
        *,
        experiment: dict[str, Any],
        inputs: dict[str, list[int]],
        class_names: list[str],
        class_codes: list[int],
        class_weights: list[float],
        bands: dict[str, list[str]],
        normalisation: dict[str, dict[str, dict[str, float]]],
        recipe: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        spec = parse_model_spec(experiment["model"])
        shapes = {s: InputShape(times=v[0], channels=v[1]) for s, v in inputs.items()}
        self.num_classes = len(class_names)
        self.model: nn.Module = build_model(spec, inputs=shapes, num_classes=self.num_classes)
        self.register_buffer("class_weight", torch.tensor(class_weights, dtype=torch.float32))
        self.register_buffer("val_counts", torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64))
        self.register_buffer(
            "test_counts", torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        )
        optim = experiment.get("optim", {})
        self.lr = float(optim.get("lr", 1e-3))
        self.weight_decay = float(optim.get("weight_decay", 0.0))
        self.plateau_factor = float(optim.get("plateau_factor", 0.1))
        self.plateau_patience = int(optim.get("plateau_patience", 5))
        self.loss_name = str(optim.get("loss", "ce"))
        self.dice_weight = float(optim.get("dice_weight", 1.0))
        self.seed = int(experiment.get("seed", 0))
        self.last_val: dict[str, float] = {}
        self._train_loss_sum = torch.zeros(())
        self._train_loss_n = 0
        self._val_terms = torch.zeros(3)  # cross-entropy sum, class-weight sum, Dice sum
        self._val_n = 0
        self._plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._pending_plateau: dict[str, Any] | None = None

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Logits (B, K, H, W)."""
        out: Tensor = self.model(batch)
        return out

    def loss_terms(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(sum of class-weighted cross-entropy over labelled pixels, sum of their class weights,
        Dice loss or None): the parts of :meth:`loss`, summable over batches and ranks."""
        valid = target != NO_LABEL
        weight_sum = self.class_weight[target[valid]].sum()
        ce_sum = F.cross_entropy(
            logits.float(), target, weight=self.class_weight, ignore_index=NO_LABEL, reduction="sum"
        )
        dice = dice_loss(logits, target) if self.loss_name == "ce_dice" else None
        return ce_sum, weight_sum, dice

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted cross-entropy (mean over the class weights of the labelled pixels, 255 ignored),
        plus Dice when configured."""
        ce_sum, weight_sum, dice = self.loss_terms(logits, target)
        if not bool(weight_sum > 0):  # no weighted labelled pixel: no signal (never NaN)
            return logits.sum() * 0.0
        value = ce_sum / weight_sum
        if dice is not None:
            value = value + self.dice_weight * dice
        return value

    def on_train_epoch_start(self) -> None:
        """Reseed torch from (seed, epoch): dropout draws do not depend on whether a run resumed."""
        torch.manual_seed(self.seed * 100_003 + self.current_epoch)
        self._train_loss_sum, self._train_loss_n = torch.zeros((), device=self.device), 0

    @property
    def epoch_metrics(self) -> dict[str, float]:
        """This epoch's mean training loss and the last validation metrics (for learning curves)."""
        out = dict(self.last_val)
        if self._train_loss_n:
            out["train_loss"] = float(self._train_loss_sum) / self._train_loss_n
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """One optimisation step."""
        logits = self(batch)
        loss = self.loss(logits, batch["label"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=logits.shape[0])
        self._train_loss_sum = self._train_loss_sum + loss.detach().float()
        self._train_loss_n += 1
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Loss and confusion counts of one validation batch."""
        logits = self(batch)
        ce_sum, weight_sum, dice = self.loss_terms(logits, batch["label"])
        self.val_counts += confusion_counts(logits, batch["label"], self.num_classes)
        dice_sum = (
            torch.zeros((), device=self.device) if dice is None else dice.detach().float() * len(logits)
        )
        terms = torch.stack([ce_sum.detach().float(), weight_sum.detach().float(), dice_sum])
        self._val_terms = self._val_terms + terms
        self._val_n += logits.shape[0]

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Confusion counts of one test batch."""
        self.test_counts += confusion_counts(self(batch), batch["label"], self.num_classes)

    def _matrix(self, counts: Tensor) -> ConfusionMatrix:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
        hp = self.hparams
        return ConfusionMatrix.from_matrix(
            counts.cpu().numpy(), hp["class_names"], codes=hp["class_codes"], ignore_index=NO_LABEL
        )

    def on_validation_epoch_start(self) -> None:
        """Start a fresh validation confusion matrix and loss."""
        self.val_counts.zero_()
        self._val_terms, self._val_n = torch.zeros(3, device=self.device), 0

    def _mean_val_loss(self) -> float:
        """Validation loss over every labelled pixel of every rank: the class-weighted
        cross-entropy summed over pixels / summed weights (the same number whatever the batch size
        or the number of processes), plus the sample mean of the Dice loss when configured."""
        totals = torch.cat([self._val_terms, torch.tensor([float(self._val_n)], device=self.device)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(totals)
        ce_sum, weight_sum, dice_sum, n = (float(v) for v in totals)
        value = ce_sum / weight_sum if weight_sum > 0 else 0.0
        if self.loss_name == "ce_dice":
            value += self.dice_weight * dice_sum / max(n, 1.0)
        return value

    def on_validation_epoch_end(self) -> None:
        """Log the validation loss (over every labelled pixel of every rank: the one number
        checkpoints, early stopping and the plateau schedule all watch) and OA, kappa,
        weighted/macro F1, mIoU from the epoch's confusion matrix."""
        val_loss = self._mean_val_loss()
        self.log("val_loss", val_loss, prog_bar=True)
        cm = self._matrix(self.val_counts)
        if cm.total == 0:
            self.last_val = {"val_loss": val_loss}
            return
        metrics = {
            "val_loss": val_loss,
            "val_oa": cm.overall_accuracy,
            "val_kappa": cm.kappa,
            "val_weighted_f1": cm.weighted_f1,
            "val_macro_f1": cm.macro_f1,
            "val_miou": cm.miou,
        }
        self.last_val = metrics
        for name, value in metrics.items():
            if name == "val_loss":
                continue
            self.log(name, float(np.nan_to_num(value)), prog_bar=name == "val_weighted_f1")

    def on_test_epoch_start(self) -> None:
        """Start a fresh test confusion matrix."""
        self.test_counts.zero_()

    def on_test_epoch_end(self) -> None:
        """Sum the test matrix over ranks; rank 0 writes it (``test_confusion.json`` in the run
        folder), so the result reaches the caller under every strategy, ``ddp_spawn`` included."""
        cm = self._matrix(self.test_counts.clone())
        if self.trainer.is_global_zero:
            cm.save_json(Path(self.trainer.default_root_dir) / TEST_MATRIX)

    def configure_optimizers(self) -> Any:
        """Adam; ReduceLROnPlateau is stepped by this module (see :meth:`on_train_epoch_end`)."""
        opt = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.plateau_factor, patience=self.plateau_patience
        )
        if self._pending_plateau is not None:
            self._plateau.load_state_dict(self._pending_plateau)
            self._pending_plateau = None
        return opt

    def on_train_epoch_end(self) -> None:
        """Step the plateau schedule on this epoch's validation loss BEFORE checkpoints are saved
        (Lightning would step it after, leaving checkpoints one step behind)."""
        if self._plateau is not None and "val_loss" in self.last_val:
            self._plateau.step(self.last_val["val_loss"])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the plateau schedule's state (plain numbers) in the checkpoint."""
        if self._plateau is not None:
            checkpoint["plateau"] = self._plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the plateau schedule when resuming (optimizers do not exist yet)."""
        self._pending_plateau = checkpoint.get("plateau")
