"""Corrected timestamps from the device's boot id and monotonic clock (raw values are kept).

Use::

    at, verified = corrected_time(record_clock, sent=batch.sent, received_at=received_at)

A terminal (a Raspberry Pi has no real-time clock) may boot in 1970 and jump
when NTP syncs, but its monotonic clock counts steadily from boot. The batch
carries the device's clock reading taken as it was sent (``sent``); central
notes its own wall clock as the batch arrives (``received_at``). For a reading
taken in the same boot as ``sent``::

    corrected = received_at - (sent.mono - record.mono)      time_verified = True

i.e. "as long before arrival as it was before sending". The error is the
network transit time plus the server clock's error (both small). For a reading
from another boot, or one whose monotonic time lies after ``sent`` (impossible
within one boot, so the data is wrong), central cannot know the time::

    corrected = record.wall                                  time_verified = False
"""

from __future__ import annotations

from sync.protocol import ClockReading


def corrected_time(reading: ClockReading, *, sent: ClockReading, received_at: float) -> tuple[float, bool]:
    """``(corrected Unix seconds, verified)`` for one clock reading of a record.

    ``sent``: the batch's clock reading at sending; ``received_at``: the
    server's wall clock when the batch arrived.
    """
    if reading.boot_id == sent.boot_id and reading.mono <= sent.mono:
        return received_at - (sent.mono - reading.mono), True
    return reading.wall, False
