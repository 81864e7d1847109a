"""Errors of the `models` package (the detector runtime and the scan format).

    ModelError
    ├── ScanFormatError      a scan file or array that breaks the scan contract
    ├── ManifestError        a model package whose manifest is missing, malformed or inconsistent
    │   └── ModelIntegrityError   the ONNX file does not match the manifest's sha256
    ├── InferenceError       onnxruntime failed on a well-formed input
    ├── ThresholdError       a class threshold override names no class or is out of range (runtime.py)
    └── pool refusals (pool.py): DeadlineUnreachable (expected finish after the deadline),
        PoolOverloaded (the station's queue is full), PoolBusy (background work while busy)
"""


class ModelError(Exception):
    """Root of the models package's errors."""


class ScanFormatError(ModelError):
    """A scan that breaks the scan-file contract."""


class ManifestError(ModelError):
    """A model package whose manifest is missing, malformed or inconsistent."""


class ModelIntegrityError(ManifestError):
    """The model file's sha256 does not match its manifest."""


class InferenceError(ModelError):
    """onnxruntime failed on a well-formed input."""
