"""Image exchange formats a record is exported in: one interface, DICOS behind it, a seam for UFF.

The WCO Unified File Format (UFF) is the other format customs tenders ask for; its specification
is not public here, so there is no UFF exporter. One is added by implementing `RecordExporter`
(named files from a record and its scan, deterministic so that bundle hashes hold) and entering it
in `EXPORTERS`; a case bundle (issue 24, later) writes the files of every registered exporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from central_sync.schema import InspectionRecord
from edge.dicos import Equipment, dicos_files
from models.scan import Scan


class RecordExporter(Protocol):
    """Turns a record and its scan into named files in one exchange format."""

    @property
    def name(self) -> str: ...

    def files(self, record: InspectionRecord, scan: Scan) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class DicosExporter:
    """NEMA DICOS: the DX pair and the threat detection reports (docs/dicos.md)."""

    equipment: Equipment | None = None
    name: str = "dicos"

    def files(self, record: InspectionRecord, scan: Scan) -> dict[str, bytes]:
        return dicos_files(record, scan, self.equipment)


EXPORTERS: dict[str, RecordExporter] = {"dicos": DicosExporter()}
