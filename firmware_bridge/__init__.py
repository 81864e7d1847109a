"""Framed, acknowledged link to the X-ray controller firmware.

codec (pure frames and payloads), endpoint (sequence/ACK/retry engine over a non-blocking fd),
link (HostLink: serial port, HELLO, heartbeats, reconnection), emulator (the firmware on a pty),
update (firmware image transfer with hash check), measure (figures over real ptys).
"""
