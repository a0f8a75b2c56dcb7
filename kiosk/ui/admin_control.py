"""The staff's way in and around: the hidden gesture, the PIN pad, the admin screen and its actions.

How staff get in: **five taps within three seconds in the top-left corner**
(:data:`CORNER_DP` square, where the logo is) of the welcome screen (or of the
closed screen outside opening hours, or the out-of-order screen), while no visit
is under way. Those taps
are taken away from the screen below, so they never give a rating. The PIN pad
follows; the right PIN opens the admin screen.

Operating rules:

* Everything slow runs off the UI thread (:class:`~kiosk.ui.background.BackgroundJobs`):
  reading the PIN hash and the lockout file, the Argon2 check, the status
  snapshot, the connection test. Sync rounds run on the scheduler's thread;
  their progress comes back through the uploader's ``progress`` seam.
* Staff mode ends by itself: no touch for ``[admin] pin_pad_timeout_s`` on the
  PIN pad, or ``[admin] timeout_s`` on the admin screen or in the preview,
  and the terminal is back on the welcome screen for visitors.
* The preview walks through the real screens with a
  :func:`~kiosk.preview.preview_flow` (it records nothing) under a "PREVIEW"
  banner, and ends on the admin screen.
* "Stop the kiosk" (after a confirmation) records a ``kiosk_stopped`` event
  in the buffer and stops the app: the only way out of kiosk mode.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from pathlib import Path

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.metrics import dp

from kiosk.i18n import N_
from kiosk.ui.lazy import LazyWidgets

log = logging.getLogger(__name__)

#: The hidden gesture: this many taps, within this many seconds, in a square this big (top left).
CORNER_TAPS = 5
CORNER_WINDOW_S = 3.0
CORNER_DP = 120
#: Where the gesture works: the welcome screen, the closed screen outside opening hours,
#: and the out-of-order screen (the admin screen says why).
GESTURE_SCREENS = ("welcome", "closed", "out_of_order")
#: Seconds between status refreshes while the admin screen is shown.
REFRESH_S = 3.0
#: A requested round that has neither reported nor runs after this many seconds is taken as over.
SYNC_SILENCE_S = 10.0
STOP_EVENT = "kiosk_stopped"

_KV_DIR = Path(__file__).resolve().parent


def _load_kv(name: str) -> None:
    """Load one of this package's kv files once (the admin's are loaded when first needed)."""
    from kivy.lang import Builder

    path = str(_KV_DIR / name)
    if path not in Builder.files:
        Builder.load_file(path)


class CornerTaps:
    """Counts taps in the top-left corner; :meth:`tap` is True on the one that completes the gesture.

    A tap outside the corner starts the count again.
    """

    def __init__(self, taps: int = CORNER_TAPS, within_s: float = CORNER_WINDOW_S) -> None:
        self.taps = taps
        self.within_s = within_s
        self._times: deque[float] = deque(maxlen=taps)

    @staticmethod
    def in_corner(x: float, y: float, window_height: float, size: float) -> bool:
        return x <= size and y >= window_height - size

    def tap(self, now: float) -> bool:
        self._times.append(now)
        if len(self._times) == self.taps and now - self._times[0] <= self.within_s:
            self._times.clear()
            return True
        return False

    def reset(self) -> None:
        self._times.clear()


class AdminControl:
    """Wires the gesture, the PIN pad, the admin screen, the preview and the actions.

    ``app``: the :class:`~kiosk.app.BalieApp` (settings, buffer, device
    state, translator, ``sync`` once built); ``manager``: its ScreenManager;
    ``navigator``: the visitor's navigator. The PIN file and the lockout live
    next to the buffer (the terminal's data folder). ``lockout.clock`` may be
    replaced by tests (boot id + boot time).

    Before the first frame only the touch handler is bound (start-up time
    counts); the rest (:meth:`start`) is made when the app is ready, or at the
    gesture if that comes first.
    """

    def __init__(self, app, manager, navigator) -> None:
        self.app = app
        self.manager = manager
        self.navigator = navigator
        self.settings = app.settings
        self.tr = app.tr
        self.pin_store = self.lockout = self.jobs = None  # made by start()
        self.watch = self.errors = self.collector = None
        self.screens = LazyWidgets({"pin_pad": self._make_pin_pad, "admin": self._make_admin})
        self.screens.on_built(lambda _name, screen: manager.add_widget(screen))
        self.mode = "off"  # "pin", "admin", "preview"
        self.corner = CornerTaps()
        self._banner = None
        self._real_flow = None
        self._timeout_event = None
        self._refresh_event = None
        self._lock_event = None
        self._lock_until = 0.0
        self._sync_requested = False
        self._sync_started = 0.0
        Window.bind(on_touch_down=self._on_touch_down)
        app.bind(on_ready=lambda *_: self.start())

    def start(self) -> None:
        """Make the services (PIN store, lockout, workers, status); log whether a PIN is set."""
        if self.jobs is None:
            from kiosk.admin_status import ErrorMemory, StatusCollector, SyncWatch
            from kiosk.pin import PinStore
            from kiosk.pin_lockout import PinLockout
            from kiosk.ui.background import BackgroundJobs

            app = self.app
            data_dir = Path(app.buffer.path).parent
            self.pin_store = PinStore(data_dir)
            self.lockout = PinLockout(data_dir)
            self.jobs = BackgroundJobs()
            self.watch = SyncWatch(app.buffer)
            self.errors = ErrorMemory.attach()
            self.collector = StatusCollector(
                self.settings, app.buffer, app.device_state,
                questionnaire=lambda: self._visitor_flow().questionnaire,
                uploader=lambda: app.sync.uploader if app.sync is not None else None,
                watch=self.watch, errors=self.errors)
            self.jobs.run("pin-state", self._log_pin_state, on_done=lambda _r: None)
        self._watch_sync()

    # ----------------------------------------------------------------- building

    def _make_pin_pad(self):
        from kiosk.ui.pin_pad import PinPadScreen

        _load_kv("pin_pad.kv")
        pad = PinPadScreen()
        pad.bind(on_submit=lambda _pad, pin: self.check_pin(pin),
                 on_cancel=lambda *_: self.leave())
        return pad

    def _make_admin(self):
        from kiosk.ui.admin import AdminScreen

        _load_kv("admin.kv")
        screen = AdminScreen(tr=self.tr)
        screen.bind(on_sync_now=lambda *_: self.sync_now(),
                    on_test_connection=lambda *_: self.test_connection(),
                    on_preview=lambda *_: self.start_preview(),
                    on_close=lambda *_: self.leave(),
                    on_stop_kiosk=lambda *_: self.stop_kiosk(),
                    on_language=lambda _s, code: self._switch_language(code))
        return screen

    def _make_banner(self):
        from kiosk.ui.preview_banner import PreviewBanner

        _load_kv("preview_banner.kv")
        banner = PreviewBanner()
        banner.bind(on_end=lambda *_: self.navigator.to_welcome())  # ends in _end_preview
        return banner

    def _log_pin_state(self) -> None:
        from kiosk.pin import describe_pin

        state, text = describe_pin(self.settings.admin, self.pin_store)
        level = logging.INFO if state in ("terminal", "config") else logging.WARNING
        log.log(level, "admin PIN: %s", text)

    # ----------------------------------------------------------------- touches

    def _on_touch_down(self, _window, touch):
        """Bound to the window before the screens see a touch: the gesture and the staff timer."""
        if self.mode != "off":
            self._restart_timeout()
            return False
        if self.manager.current not in GESTURE_SCREENS or self.navigator.flow.in_visit:
            self.corner.reset()
            return False
        if not CornerTaps.in_corner(touch.x, touch.y, Window.height, dp(CORNER_DP)):
            self.corner.reset()
            return False
        if self.corner.tap(Clock.time()):
            self.open_pin_pad()
        return True  # a corner tap is the gesture's, never a rating

    def _restart_timeout(self) -> None:
        if self._timeout_event is not None:
            self._timeout_event.cancel()
        admin = self.settings.admin
        seconds = admin.pin_pad_timeout_s if self.mode == "pin" else admin.timeout_s
        self._timeout_event = Clock.schedule_once(self._timed_out, seconds)

    def _timed_out(self, _dt) -> None:
        self._timeout_event = None
        log.info("admin: no touch for a while on the %s; back to the welcome screen", self.mode)
        self.leave()

    # ----------------------------------------------------------------- PIN pad

    def open_pin_pad(self) -> None:
        """The gesture was made: show the PIN pad (in the terminal's default language)."""
        self.start()
        self.mode = "pin"
        default = self.settings.languages.default
        if self.tr.lang != default:
            self.navigator.switch_language(default)
        pad = self.screens["pin_pad"]
        pad.reset()
        pad.checking = True  # until the PIN state and the lockout are read
        self.manager.current = "pin_pad"
        self._restart_timeout()
        log.info("admin: PIN pad opened")
        self.jobs.run("pin-open", self._pin_state, on_done=self._show_pin_state,
                      on_error=self._pin_file_failed)

    def _pin_state(self):
        from kiosk.pin import find_pin

        return find_pin(self.settings.admin, self.pin_store), self.lockout.remaining()

    def _show_pin_state(self, result) -> None:
        if self.mode != "pin":
            return
        source, remaining = result
        pad = self.screens["pin_pad"]
        pad.checking = False
        if source is None:
            log.warning("admin: no PIN is set, so the admin screen cannot be opened; "
                        "set one with `balie-kiosk set-pin`")
            pad.available = False
            pad.say(N_("No admin PIN is set on this terminal. Set one with: balie-kiosk set-pin"),
                    "error")
        elif remaining > 0:
            self._lock_pad(remaining)

    def _pin_file_failed(self, error: BaseException) -> None:
        log.error("admin: %s", error)
        if self.mode != "pin":
            return
        pad = self.screens["pin_pad"]
        pad.checking = False
        pad.available = False
        pad.say(N_("The admin PIN cannot be read. Set it again with: balie-kiosk set-pin"), "error")

    def check_pin(self, pin: str) -> None:
        """OK on the pad: check ``pin`` off the UI thread (the pad shows it is checking)."""
        from kiosk.pin import MIN_DIGITS

        pad = self.screens["pin_pad"]
        if len(pin) < MIN_DIGITS:
            pad.say(N_("Enter 4 to 8 digits."), "error")
            return
        pad.checking = True
        pad.say(N_("Checking…"))
        self.jobs.run("pin-check", lambda: self._verify(pin), on_done=self._pin_checked,
                      on_error=self._pin_file_failed)

    def _verify(self, pin: str):
        """On a worker: count the try, then run the slow hash (the same time for right and wrong)."""
        from kiosk.pin import find_pin, verify_pin
        from kiosk.pin_lockout import PadLocked

        source = find_pin(self.settings.admin, self.pin_store)
        if source is None:
            return "no-pin", None
        try:
            attempt = self.lockout.begin_attempt()
        except PadLocked as locked:
            return "locked", locked.seconds
        if verify_pin(source.encoded, pin):
            self.lockout.succeeded()
            return "ok", None
        return "wrong", attempt

    def _pin_checked(self, result) -> None:
        outcome, detail = result
        if outcome == "ok":
            log.info("admin: PIN accepted; admin screen opened")
        else:
            log.warning("admin: PIN refused (%s)", outcome)
        if self.mode != "pin":  # timed out or cancelled meanwhile
            return
        pad = self.screens["pin_pad"]
        pad.checking = False
        if outcome == "ok":
            self.open_admin()
        elif outcome == "no-pin":
            self._show_pin_state((None, 0.0))
        elif outcome == "locked":
            self._lock_pad(detail)
        elif detail.delay > 0:
            self._lock_pad(detail.delay)
        else:
            pad.say(N_("Wrong PIN. Tries left before the pad locks: {tries}"), "error",
                    tries=detail.tries_left)

    def _lock_pad(self, seconds: float) -> None:
        self._lock_until = Clock.time() + seconds
        self._tick_lock(0)
        if self._lock_event is None:
            self._lock_event = Clock.schedule_interval(self._tick_lock, 0.5)

    def _tick_lock(self, _dt):
        pad = self.screens["pin_pad"]
        left = max(0, math.ceil(self._lock_until - Clock.time()))
        pad.locked_s = left
        if left > 0:
            pad.say(N_("Too many wrong tries. Try again in {seconds} s."), "error", seconds=left)
            return True
        pad.say("")
        if self._lock_event is not None:
            self._lock_event.cancel()
            self._lock_event = None
        return False

    # ----------------------------------------------------------------- admin screen

    def open_admin(self) -> None:
        """Show the admin screen and keep its status fresh while it is shown."""
        self.mode = "admin"
        self._update_language_toggle()
        self.manager.current = "admin"
        self._watch_sync()
        self.watch.on_progress = lambda progress: self.jobs.post(
            lambda: self._show_progress(progress))
        self._refresh()
        if self._refresh_event is None:
            self._refresh_event = Clock.schedule_interval(self._refresh, REFRESH_S)
        self._restart_timeout()

    def _refresh(self, *_args) -> None:
        self.jobs.run("snapshot", self.collector.collect, on_done=self._show_snapshot)

    def _show_snapshot(self, snapshot) -> None:
        screen = self.screens["admin"]
        screen.show_snapshot(snapshot)
        if (self._sync_requested and not snapshot.sync_running
                and Clock.time() - self._sync_started > SYNC_SILENCE_S):
            # No round runs and none reported its end (it failed outside the uploader: logged).
            self._sync_requested = False
            screen.busy = self.jobs.running("probe")

    def _watch_sync(self) -> None:
        sync, watch = self.app.sync, self.watch
        if sync is not None and watch is not None and watch.listener not in sync.uploader.progress:
            sync.uploader.progress.append(watch.listener)

    def _visitor_flow(self):
        return self._real_flow if self._real_flow is not None else self.navigator.flow

    def _update_language_toggle(self) -> None:
        languages = list(self.settings.languages.available)
        screen = self.screens["admin"]
        if len(languages) < 2:
            screen.other_language = ""
            return
        current = self.tr.lang if self.tr.lang in languages else languages[0]
        screen.other_language = languages[(languages.index(current) + 1) % len(languages)]

    def _switch_language(self, code: str) -> None:
        """The admin screen's language button: every text, not the screen (leaving resets it)."""
        self.tr.switch(code)
        if "welcome" in self.navigator.screens.built():
            self.navigator.screens["welcome"].current_language = code
        self._update_language_toggle()

    # ----------------------------------------------------------------- actions

    def _not_enrolled(self) -> bool:
        if self.app.device_state is not None:
            return False
        self.screens["admin"].say(N_("Not enrolled: this terminal does not sync. "
                                     "Enrol it with: balie-kiosk enroll"), "error")
        return True

    def sync_now(self) -> None:
        """Start a sync round in the background; its progress shows as "sent N, left M"."""
        screen = self.screens["admin"]
        if self._not_enrolled():
            return
        sync = self.app.sync
        if sync is None:
            screen.say(N_("Sync is still starting. Try again in a moment."), "error")
            return
        self._watch_sync()
        running = sync.uploader.busy
        sync.trigger_now()
        self._sync_requested = True
        self._sync_started = Clock.time()
        screen.busy = True
        if running:
            screen.say(N_("A sync round is already running; its progress follows."))
        else:
            screen.say(N_("Sync started…"))
        log.info("admin: sync now")

    def _show_progress(self, progress) -> None:
        if self.mode != "admin":
            return
        screen = self.screens["admin"]
        left = progress.left if progress.left is not None else "?"
        if not progress.finished:
            screen.busy = True
            screen.say(N_("Sending: {sent} sent, {left} left"), sent=progress.sent, left=left)
            return
        self._sync_requested = False
        screen.busy = False
        if progress.stopped_reason == "done" and not progress.error:
            screen.say(N_("Sync done: {sent} sent, {left} left"), "ok",
                       sent=progress.sent, left=left)
        else:
            screen.say(N_("Sync stopped: {sent} sent, {left} left. {error}"), "error",
                       sent=progress.sent, left=left,
                       error=progress.error or progress.stopped_reason)
        self._refresh()

    def test_connection(self) -> None:
        """Ask central's /healthz and send an authenticated heartbeat, off the UI thread."""
        screen = self.screens["admin"]
        if self._not_enrolled():
            return
        app = self.app
        uploader = app.sync.uploader if app.sync is not None else None
        extras = list(uploader.heartbeat_extras) if uploader is not None else []
        last = uploader.last_report.last_error if uploader and uploader.last_report else None

        def probe():
            from sync.probe import check_connection

            return check_connection(self.settings.sync, app.buffer, app.device_state,
                                    extras=extras, last_error=last)

        if self.jobs.run("probe", probe, on_done=self._probe_done,
                         on_error=lambda err: self._probe_done(None, err)):
            screen.busy = True
            screen.say(N_("Testing the connection to {url}…"), url=app.device_state.central_url)
            log.info("admin: testing the connection to %s", app.device_state.central_url)

    def _probe_done(self, result, error: BaseException | None = None) -> None:
        if self.mode != "admin":
            return
        screen = self.screens["admin"]
        screen.busy = self._sync_requested
        if result is not None and result.ok:
            ms = [round(step.seconds * 1000) for step in result.steps]
            screen.say(N_("Connection OK: central answered in {health} ms and accepted this "
                          "terminal in {auth} ms."), "ok", health=ms[0], auth=ms[1])
            log.info("admin: connection test OK")
            return
        text = result.error if result is not None else f"{type(error).__name__}: {error}"
        screen.say(N_("Connection failed: {error}"), "error", error=text)
        log.warning("admin: connection test failed: %s", text)

    def start_preview(self) -> None:
        """Walk through the questionnaire on the real screens; nothing is recorded."""
        from kiosk.preview import preview_flow

        self.mode = "preview"
        self._stop_refresh()
        navigator = self.navigator
        self._real_flow = navigator.flow
        navigator.flow = preview_flow(self._real_flow.questionnaire, self.settings,
                                      language=self.tr.lang, monotonic=Clock.time)
        navigator.leave_to = self._end_preview
        if self._banner is None:
            self._banner = self._make_banner()
        Window.add_widget(self._banner)
        navigator.show(navigator.flow.current())
        self._restart_timeout()
        log.info("admin: questionnaire preview started (nothing is recorded)")

    def _end_preview(self) -> None:
        """The preview's visit ended (thanks, idle, the banner's button): back to the admin screen."""
        self._restore_visitor_flow()
        self.open_admin()

    def _restore_visitor_flow(self) -> None:
        if self._real_flow is None:
            return
        navigator = self.navigator
        navigator.leave_to = None
        preview, navigator.flow = navigator.flow, self._real_flow
        self._real_flow = None
        if preview.questionnaire is not navigator.flow.questionnaire:
            # Central's new questionnaire was switched in during the preview (the
            # switcher saw a welcome screen): the visitors' flow takes it too.
            navigator.flow.use_questionnaire(preview.questionnaire)
        if self._banner is not None and self._banner.parent is not None:
            self._banner.parent.remove_widget(self._banner)
        log.info("admin: questionnaire preview ended")

    def leave(self) -> None:
        """Back to the welcome screen for visitors (the admin's "back", cancel, or a timeout)."""
        if self.mode == "off":
            return
        self._cancel_timers()
        self.watch.on_progress = None
        self._sync_requested = False
        if self._real_flow is not None:
            self.navigator.flow.forget()  # the preview's visit: nothing to close anywhere
            self._restore_visitor_flow()
        if "pin_pad" in self.screens.built():
            self.screens["pin_pad"].reset()
        if "admin" in self.screens.built():
            self.screens["admin"].busy = False
            self.screens["admin"].say("")
        self.mode = "off"
        self.corner.reset()
        log.info("admin: left; back to the welcome screen")
        self.navigator.to_welcome()

    def stop_kiosk(self) -> None:
        """Confirmed on the admin screen: record the stop, then stop the app (out of kiosk mode)."""
        from kiosk.errors import BufferUnavailable

        log.warning("admin: the kiosk is stopped for maintenance")
        try:
            self.app.buffer.record_event(STOP_EVENT, "stopped for maintenance from the admin screen")
        except BufferUnavailable as err:
            log.error("admin: could not record the stop in the buffer: %s", err)
        self._cancel_timers()
        self.mode = "off"
        self.app.stop()

    # ----------------------------------------------------------------- timers

    def _stop_refresh(self) -> None:
        if self._refresh_event is not None:
            self._refresh_event.cancel()
            self._refresh_event = None

    def _cancel_timers(self) -> None:
        self._stop_refresh()
        for event in (self._timeout_event, self._lock_event):
            if event is not None:
                event.cancel()
        self._timeout_event = self._lock_event = None

    def close(self) -> None:
        """The app stops: let go of the window, the clock, the logger and the uploader."""
        self._cancel_timers()
        Window.unbind(on_touch_down=self._on_touch_down)
        if self._banner is not None and self._banner.parent is not None:
            self._banner.parent.remove_widget(self._banner)
        if self.jobs is None:
            return
        self.watch.on_progress = None
        self.jobs.close()
        self.errors.detach()
        sync = self.app.sync
        if sync is not None and self.watch.listener in sync.uploader.progress:
            sync.uploader.progress.remove(self.watch.listener)
