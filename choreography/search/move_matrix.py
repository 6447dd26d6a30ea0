"""The loaded library: aligned move ids, filter metadata and one float32 matrix of one space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from choreography.search.spaces import FloatArray
from schemas.errors import InvalidInput

StrArray = npt.NDArray[np.str_]


@dataclass(frozen=True, eq=False)
class MoveMatrix:
    """Row ``i`` of ``matrix`` is the unit vector of move ``ids[i]`` with its metadata."""

    kind: str
    space: str
    ids: StrArray
    styles: StrArray
    difficulties: StrArray
    energies: StrArray
    matrix: FloatArray
    library_version: int

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.dtype != np.float32:
            raise InvalidInput(
                f"{self.kind} matrix must be 2-d float32, got {self.matrix.dtype} "
                f"with shape {self.matrix.shape}"
            )
        rows = self.matrix.shape[0]
        for name in ("ids", "styles", "difficulties", "energies"):
            length = len(getattr(self, name))
            if length != rows:
                raise InvalidInput(f"{name} has {length} entries for {rows} {self.kind} vectors")
        if rows and len(np.unique(self.ids)) != rows:
            raise InvalidInput(f"{self.kind} matrix has duplicate move ids")

    @property
    def size(self) -> int:
        """Number of moves."""
        return int(self.matrix.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.matrix.shape[1])

    def row_of(self, move_id: str) -> int | None:
        """Row of ``move_id``, or ``None`` when the move is not in the matrix."""
        hits = np.flatnonzero(self.ids == move_id)
        return int(hits[0]) if hits.size else None
