"""Errors of the `central_sync` package (wire protocol, station publisher, hub).

    SyncError
    ├── WireFormatError     a payload, topic or blob row that breaks the wire contract (counted, never fatal)
    ├── BrokerError         the broker refused a connection or a publish (a failure reason code)
    ├── SessionLost         the MQTT session ended or stopped making progress; the client is rebuilt
    ├── HubStoreError       the hub database refused or failed a write
    ├── CommandError        a signed command that cannot be accepted; `code` is its reason (commands.py)
    │   ├── CommandFormatError      the envelope or its arguments do not parse
    │   └── CommandSignatureError   the signature does not verify against the pinned hub key
    ├── AccountError        a control-room sign-in refused or an account that cannot be made (control_room/auth.py)
    ├── ImageUnreadable     a stored scan that cannot be rendered as a PNG (control_room/images.py)
    ├── Refused             a control-room request refused: HTTP status, code and English sentence (control_room/refusals.py)
    ├── DbUrlError          the hub's database URL file cannot be read or is empty (hub/cli.py)
    ├── TokenFileError      the /api service token file cannot be read or has a bad line (hub/api_auth.py)
    ├── AccountsError       a broker account that cannot be written (broker_accounts.py)
    ├── PkiError            a CA operation refused: no CA, a CSR whose subject is not the station (pki.py)
    ├── RetentionError      a signed retention state that cannot be accepted; `code` is its reason (retention.py)
    │   ├── HoldError       a legal hold that cannot be placed or released (hub/retention.py)
    │   └── Replan          a record a prune planned must stay: the page is rolled back, planned again (hub/retention.py)
    ├── CaseBundleError     a case bundle that cannot be built or read, a verifying key that cannot be read (case_bundle.py)
    ├── RolloutError        a model package or roll-out the hub cannot take: unknown, unsigned, bad target (model_delivery.py)
    │   └── HeaderSignatureError  a roll-out header unsigned or not signed by the hub's key a station pins
    └── RiskHubError        risk authoring and publishing at the hub (riskhub/)
        ├── DraftError          a change that cannot be drafted, approved or rejected (its payload, its state)
        │   └── FourEyesError   the author of a change tried to approve it
        └── PublishError        a bundle that cannot be built, signed or stored
"""

from __future__ import annotations


class SyncError(Exception):
    """Root of the central_sync package's errors."""


class WireFormatError(SyncError):
    """A payload, topic or blob row that breaks the wire contract."""


class BrokerError(SyncError):
    """The broker answered a connect or publish with a failure reason code."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class SessionLost(SyncError):
    """The MQTT session ended or stopped acknowledging; the client must be rebuilt."""


class HubStoreError(SyncError):
    """The hub database refused or failed a write."""


class RiskHubError(SyncError):
    """Risk authoring or publishing at the hub failed."""


class DraftError(RiskHubError):
    """A change that cannot be drafted, approved or rejected; the message names the draft and why. `code` and `vals`:
    the same for a translation (the control room's error.risk.<code>)."""

    def __init__(self, message: str, code: str = "draft_refused", **vals: object) -> None:
        super().__init__(message)
        self.code, self.vals = code, vals


class FourEyesError(DraftError):
    """The author of a change tried to approve it: a second person must."""


class PublishError(RiskHubError):
    """A bundle that cannot be built, signed or stored."""
