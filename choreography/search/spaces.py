"""Embedding kinds and spaces: a vector is only comparable with vectors of the same space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from choreography.moves.model import ENERGIES
from choreography.moves.model import energy_level as energy_level_of_number
from schemas.errors import InvalidInput

EMBEDDING_KINDS = ("pose", "rhythm", "text")
COMBINED = "combined"

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Embedding:
    """One L2-normalised float32 vector and the space it lives in."""

    kind: str
    space: str
    vector: FloatArray

    def __post_init__(self) -> None:
        if self.kind not in (*EMBEDDING_KINDS, COMBINED):
            raise InvalidInput(f"embedding kind {self.kind!r} is not one of {EMBEDDING_KINDS}")
        if not self.space:
            raise InvalidInput(f"{self.kind} embedding has an empty space name")
        vector = np.asarray(self.vector)
        if vector.ndim != 1 or vector.size == 0:
            raise InvalidInput(f"{self.kind} embedding must be a non-empty 1-d vector")
        if not np.all(np.isfinite(vector)):
            raise InvalidInput(f"{self.kind} embedding ({self.space}) has non-finite values")

    @property
    def dim(self) -> int:
        """Number of components."""
        return int(self.vector.shape[0])


def require_same_space(expected: str, got: str, what: str = "query") -> None:
    """Raise ``InvalidInput`` naming both spaces when ``got`` is not ``expected``."""
    if expected != got:
        raise InvalidInput(
            f"{what} is in embedding space {got!r} but the index is in {expected!r}; "
            "vectors from different spaces cannot be compared"
        )


def l2_normalise(vector: npt.ArrayLike, what: str = "vector") -> FloatArray:
    """Return ``vector`` as float32 with unit L2 norm; a zero or non-finite vector is an error."""
    out = np.asarray(vector, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(out)):
        raise InvalidInput(f"{what} has non-finite values")
    norm = float(np.linalg.norm(out))
    if norm == 0.0:
        raise InvalidInput(f"{what} is all zeros and has no direction")
    return (out / norm).astype(np.float32)


def l2_normalise_rows(matrix: npt.ArrayLike, what: str = "matrix") -> FloatArray:
    """Return a C-contiguous float32 copy of ``matrix`` with unit-norm rows."""
    out = np.array(matrix, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2:
        raise InvalidInput(f"{what} must be 2-d (rows, dim), got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise InvalidInput(f"{what} has non-finite values")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    if np.any(norms == 0.0):
        raise InvalidInput(f"{what} has all-zero rows")
    out /= norms
    return out


def energy_level(value: str | float) -> str:
    """Map a stored energy (``low|medium|high``, or the database's 0..1 number) to its level."""
    if isinstance(value, str):
        if value not in ENERGIES:
            raise InvalidInput(f"energy {value!r} is not one of {ENERGIES}")
        return value
    return energy_level_of_number(float(value))
