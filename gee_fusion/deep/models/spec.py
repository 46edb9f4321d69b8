"""Declarative model specifications: what an experiment YAML writes under ``model:``.

Each spec is a frozen pydantic model; :data:`ModelSpec` is their discriminated union on ``name``, so
``{"name": "convlstm", "sensors": ["S1", "S2"], "inception": True}`` validates into a
:class:`ConvLSTMSpec`. Sensor lists are stored in the canonical order of the batch contract
(``S2`` before ``S1``), so ``[S1, S2]`` and ``[S2, S1]`` name the same model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from gee_fusion.errors import ConfigError

SensorName = Literal["S2", "S1"]
SENSOR_ORDER: tuple[str, ...] = ("S2", "S1")
"""Canonical sensor order (the order of the batch contract in :mod:`gee_fusion.deep`)."""


class _Spec(BaseModel):
    """Fields and checks shared by every model spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensors: tuple[SensorName, ...] = Field(
        description="Sensors the model reads: a non-empty subset of S1, S2 without duplicates."
    )

    @field_validator("sensors")
    @classmethod
    def _canonical_sensors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("sensors must name at least one of S1, S2")
        if len(set(value)) != len(value):
            raise ValueError(f"sensors must not repeat a sensor, got {list(value)}")
        return tuple(s for s in SENSOR_ORDER if s in value)


def _check_base_width(value: int) -> int:
    if value % 4:
        raise ValueError(f"base_width must be a multiple of 4 (got {value}); the default is 64")
    return value


class UNetSpec(_Spec):
    """Single-stack U-Net: every sensor's ``(T, C)`` dates flattened into one ``T*C``-channel image."""

    name: Literal["unet"] = "unet"
    encoder: Literal["vgg16", "resnet18", "resnet34", "resnet50"] = "vgg16"
    base_width: int = Field(64, ge=4, le=256, description="Width of the first stage; scales every width.")

    check_base_width = field_validator("base_width")(_check_base_width)


class ConvLSTMSpec(_Spec):
    """ConvLSTM branch per sensor (+ optional Inception branch) into a VGG-16 U-Net (Wenger et al. 2023)."""

    name: Literal["convlstm"] = "convlstm"
    hidden: int = Field(32, ge=1, le=1024, description="Filters of each ConvLSTM cell (paper: 32).")
    kernel_size: int = Field(3, ge=1, le=9, description="Odd ConvLSTM kernel size (paper: 3).")
    inception: bool = Field(False, description="Add the Inception branch on the first available date.")
    inception_width: int = Field(32, ge=1, le=1024, description="Filters of each of the 4 Inception paths.")
    base_width: int = Field(64, ge=4, le=256, description="First width of the VGG-16 U-Net head.")

    check_base_width = field_validator("base_width")(_check_base_width)

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd (got {value}) so the state keeps its size")
        return value


class UTAESpec(_Spec):
    """U-TAE (Garnot & Landrieu 2021); the defaults are the paper's."""

    name: Literal["utae"] = "utae"
    encoder_widths: tuple[int, ...] = Field((64, 64, 64, 128), description="Encoder widths, top to bottom.")
    decoder_widths: tuple[int, ...] = Field((32, 32, 64, 128), description="Decoder widths, top to bottom.")
    out_width: int = Field(32, ge=1, le=1024, description="Width of the output block before the classifier.")
    n_heads: int = Field(16, ge=1, le=256, description="L-TAE heads (and skip-aggregation channel groups).")
    d_model: int = Field(256, ge=1, le=4096, description="L-TAE model width.")
    d_k: int = Field(4, ge=1, le=256, description="L-TAE key/query width.")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout after the L-TAE MLP.")
    positional_period: float = Field(
        1000.0, gt=0.0, description="Period T of the sinusoidal day-of-year encoding (paper: 1000)."
    )
    norm_groups: int = Field(4, ge=1, le=256, description="GroupNorm groups of the per-date encoder.")

    @model_validator(mode="after")
    def _consistent_widths(self) -> UTAESpec:
        enc, dec = self.encoder_widths, self.decoder_widths
        if len(enc) < 2:
            raise ValueError(f"encoder_widths needs at least 2 levels, got {list(enc)}")
        if len(dec) != len(enc):
            raise ValueError(
                f"decoder_widths {list(dec)} must have as many levels as encoder_widths {list(enc)}"
            )
        if dec[-1] != enc[-1]:
            raise ValueError(f"decoder_widths[-1] ({dec[-1]}) must equal encoder_widths[-1] ({enc[-1]})")
        if min(enc + dec) < 1:
            raise ValueError("every encoder/decoder width must be >= 1")
        for w in enc:
            if w % self.n_heads or w % self.norm_groups:
                raise ValueError(
                    f"encoder width {w} must be divisible by n_heads ({self.n_heads}) and by "
                    f"norm_groups ({self.norm_groups})"
                )
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


class DualFusionSpec(_Spec):
    """Dual-encoder U-Net merged before the deepest layer (Stocker & Le Bris).

    With ``use_prior`` the second encoder reads a prior label map (``batch["prior"]``) one-hot encoded
    over ``prior_classes``; without it, the first encoder reads the S2 stack and the second the S1 stack.
    """

    name: Literal["dual_fusion"] = "dual_fusion"
    use_prior: bool = True
    prior_classes: int | None = Field(
        None, ge=2, le=255, description="Classes of the prior map (indices 0..n-1, 255 unknown)."
    )
    base_width: int = Field(64, ge=4, le=256, description="Width of the first stage; scales every width.")

    check_base_width = field_validator("base_width")(_check_base_width)

    @model_validator(mode="after")
    def _prior_or_two_sensors(self) -> DualFusionSpec:
        if self.use_prior and self.prior_classes is None:
            raise ValueError("use_prior=True needs prior_classes (number of classes of the prior map)")
        if not self.use_prior and set(self.sensors) != {"S1", "S2"}:
            raise ValueError(
                f"use_prior=False fuses S2 and S1 in two encoders: sensors must be [S1, S2], "
                f"got {list(self.sensors)}"
            )
        return self


ModelSpec = Annotated[UNetSpec | ConvLSTMSpec | UTAESpec | DualFusionSpec, Field(discriminator="name")]
"""Any model spec, selected by its ``name`` field."""

_ADAPTER: TypeAdapter[ModelSpec] = TypeAdapter(ModelSpec)


def parse_model_spec(data: Mapping[str, Any]) -> ModelSpec:
    """Validate a mapping (e.g. the ``model:`` section of a YAML file) into a model spec.

    Args:
        data: Mapping with a ``name`` key (``unet``, ``convlstm``, ``utae`` or ``dual_fusion``) and
            that spec's fields.

    Returns:
        The validated spec.

    Raises:
        ConfigError: If ``name`` is unknown or a field is missing, misspelled or out of range.
    """
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "model"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigError(f"Invalid model spec {dict(data)!r}:\n" + "\n".join(lines)) from exc
