"""A pseudo-terminal standing in for a serial device, for the simulators of serial readers.

The reader side opens `port`, a symlink (like /dev/serial/by-id/...) to the pty's slave;
`unplug()` closes the pty (the reader gets EIO or end of file) and removes the symlink, and
`replug()` makes a new pty, usually under another /dev/pts name, and links it again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tty


class PtyPort:
    """The simulator's end of a pty; `send_raw` writes what the device would send."""

    def __init__(self, name: str, prefix: str) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=prefix)
        self.port = os.path.join(self._dir.name, name)
        self._fds: tuple[int, int] | None = None
        self.bytes_dropped = 0

    def replug(self) -> None:
        """Attach a fresh pty and point the by-id style link at it."""
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fds = (master, slave)
        tmp = self.port + ".new"
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port)

    def unplug(self) -> None:
        """Close the pty and remove the link, as udev removes /dev/serial/by-id: the reader's next read fails.

        Without removing the link, a reopen could reach whatever pty next gets the old /dev/pts number.
        """
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.port)

    def close(self) -> None:
        """Unplug and remove the link's directory."""
        self.unplug()
        self._dir.cleanup()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbage, split frames); dropped while unplugged or full."""
        if self._fds is None:
            self.bytes_dropped += len(data)
            return
        try:
            os.write(self._fds[0], data)
        except (BlockingIOError, OSError):
            self.bytes_dropped += len(data)
