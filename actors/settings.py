"""The one frozen Settings object, built in run.py and passed down in first messages.

Nothing else in the code base reads ``os.environ``: run.py folds flags and
``CSMS_*`` variables into this object and hands it to every actor in its
configuration message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Every tunable of one central-system node."""

    host: str = "0.0.0.0"
    port: int = 9000
    metrics_port: int = 9100
    admin_port: int = 1900
    # The HTTP API (issue 11): port and bind address (loopback unless asked).
    api_port: int = 9200
    api_host: str = "127.0.0.1"
    db: str = "csms.db"
    heartbeat_interval: int = 300
    unknown_stations: str = "accept"  # "accept" | "reject" | "pending"
    # New unknown identities a host registers (accept) or lists (pending) per minute,
    # and the most it lists for approval / the most stations it lets register unasked.
    # What one station may store: meterValue elements per MeterValues and per minute
    # (a real charger sends a handful a minute), and how long meter values are kept
    # (days; 0: for ever), pruned by the scheduler.
    max_meter_values_per_message: int = 200
    max_meter_values_per_minute: int = 6_000
    meter_values_retention_days: float = 0.0
    # History (storage.history): events kept for the stream's reconnects (hours), the last
    # frames of each station (a ring), operator actions, authorization decisions and
    # vendor DataTransfer data (days; 0: for ever), pruned by the scheduler.
    event_retention_hours: float = 24.0
    frame_log_per_station: int = 200
    audit_retention_days: float = 365.0
    authorization_log_days: float = 30.0
    data_transfer_retention_days: float = 30.0
    unknown_per_minute: int = 12_000  # above a 10,000-station first connection storm
    max_pending: int = 10_000
    max_stations: int = 100_000
    call_timeout: float = 30.0
    log_level: str = "INFO"
    log_format: str = "text"  # "text" | "json" (actors.logformat)
    # Seconds between WebSocket pings from the central system; 0 disables.
    ping_interval: float = 60.0
    # Largest accepted WebSocket message, in bytes (close code 1009 above it).
    max_frame_size: int = 65536
    # CALLs per second one connection may send before it is closed 1008 (flood);
    # far above any real charge point. 0 disables the limit.
    max_call_rate: int = 1000
    # Policy: answer StartTransaction ConcurrentTx when the tag already has a
    # transaction running anywhere. Off by default (see README).
    concurrent_tx: bool = False
    # Interval returned with a Pending or Rejected BootNotification.conf.
    boot_retry_interval: int = 60
    # DataTransfer vendorIds the central system accepts (anything else:
    # UnknownVendorId). Maps vendorId -> tuple of accepted messageIds
    # (empty tuple: every messageId).
    data_transfer_vendors: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Directory for prometheus_client's multiprocess mode files.
    metrics_dir: str = ""
    # PID of the run.py process; the registry stops the system if it dies.
    parent_pid: int = 0
    # TLS on --port (security profiles 2 and 3): server certificate and key (PEM), and the
    # CA bundle client certificates must chain to (profile 3). Empty: plain ws://.
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # An extra plain ws:// port for profiles 0 and 1 while --port is TLS; 0: none.
    plain_port: int = 0
    # The certificate authority that signs charge points' CSRs (SignCertificate): its
    # certificate and key (PEM); empty: csms-ca.pem / csms-ca.key next to the database
    # (made by `ctl ca init`). No CA there: SignCertificate is answered Rejected.
    ca_cert: str = ""
    ca_key: str = ""
    # The organisation (subject O) a CSR must carry; empty: not checked.
    cpo_name: str = ""
    # Certificate and key that sign firmware for `ctl signed-update-firmware` without --signature.
    firmware_signing_cert: str = ""
    firmware_signing_key: str = ""
    # Station-host processes (``--hosts``); 0 means one per core.
    hosts: int = 0
    # Label the per-station gauges with station ids (cardinality!).
    per_station_labels: bool = False
