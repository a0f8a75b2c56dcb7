"""kiosk.gc_pause: the cycle collector off during start-up, everything collectable again after."""

from __future__ import annotations

import gc

from kiosk import gc_pause


class Cycle:
    def __init__(self):
        self.me = self


def test_pause_keep_and_resume_restore_normal_collection():
    assert gc.isenabled()
    try:
        gc_pause.pause()
        assert not gc.isenabled()
        Cycle()                                     # garbage in a cycle, made during start-up
        gc_pause.keep_made()
        assert gc.get_freeze_count() > 0
        assert gc.collect() == 0                    # frozen: not even an explicit collection
    finally:
        gc_pause.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.collect() > 0                         # the cycle is found once resumed
    gc_pause.resume()                               # nothing paused: does nothing
    assert gc.isenabled()
