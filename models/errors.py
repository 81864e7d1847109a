"""Errors of the `models` package (the detector runtime and the scan format).

    ModelError
    ├── ScanFormatError      a scan file or array that breaks the scan contract
    ├── ExportFormatError    a station's COCO export the closed loop cannot train on (training/closed_loop.py)
    ├── ManifestError        a model package whose manifest is missing, malformed or inconsistent
    │   └── ModelIntegrityError   the ONNX file does not match the manifest's sha256
    ├── PackageError         a signed model package refused before any byte reaches onnxruntime
    │                        (signing.py; `code`: unsigned, unknown_key, bad_signature, sha_mismatch, ...)
    ├── InferenceError       onnxruntime failed on a well-formed input
    ├── NotApplicable        a scan the model was not made for (manifest [applies], content)
    │   └── NoApplicableModel     no package in the zoo is made for a station's or file's scans
    ├── ThresholdError       a class threshold override names no class or is out of range (runtime.py)
    ├── HistoryError         a scan and reference that cannot be compared (history/: shapes, lengths)
    │   └── JudgeError       the region judge file is missing, malformed or made for other features
    └── pool refusals (pool.py): DeadlineUnreachable (expected finish after the deadline),
        PoolOverloaded (the station's queue is full), PoolBusy (background work while busy)
"""


class ModelError(Exception):
    """Root of the models package's errors."""


class ScanFormatError(ModelError):
    """A scan that breaks the scan-file contract."""


class ExportFormatError(ModelError):
    """A station's COCO export of reviewed scans that is malformed (names the file and the problem)."""


class ManifestError(ModelError):
    """A model package whose manifest is missing, malformed or inconsistent."""


class ModelIntegrityError(ManifestError):
    """The model file's sha256 does not match its manifest."""


class PackageError(ModelError):
    """A signed model package that cannot be installed; `code` is the stable reason sent to the hub."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InferenceError(ModelError):
    """onnxruntime failed on a well-formed input."""


class NotApplicable(ModelError):
    """A scan the model was not made for (its manifest's [applies], or content it cannot judge)."""


class NoApplicableModel(NotApplicable):
    """No model package in the zoo is made for these scans."""


class HistoryError(ModelError):
    """A scan that cannot be compared with a reference pass (models.history)."""


class JudgeError(HistoryError):
    """The region judge (history/judge.json) cannot be used: missing, malformed, or made for other features."""
