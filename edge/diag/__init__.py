"""Hardware-in-the-loop diagnostics: the technician's plan, run against hardware or against the twin.

    from edge.diag.cli import main_diag                 # `edge diag ...` (returns the exit status)
    result = await run_diag(cfg, DiagOptions(out_dir)) # RunResult: phases, measurements, outcome
    written = write_run(result, out_dir, key=key)       # chained, signed JSON record, junit.xml, report.html
    verify_chain(out_dir, public_key)                   # audit the records against the station's key

Who ran it: `signin` (badge + PIN against the station's users); the station key: `signing`.

Layers: core (outcomes, specs, measurements; no IO) -> specs (the limits table) -> context (what a
phase may do) -> phases/* -> plan (order and needs) -> runner -> records/report -> cli.
"""

from edge.diag.core import Measurement, Outcome, PhaseResult, Spec
from edge.diag.records import ChainReport, verify_chain
from edge.diag.report import Written, write_run
from edge.diag.runner import DiagOptions, RunResult, run_diag

__all__ = ["ChainReport", "DiagOptions", "Measurement", "Outcome", "PhaseResult", "RunResult", "Spec", "Written",
           "run_diag", "verify_chain", "write_run"]
