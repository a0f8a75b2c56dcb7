"""The Kivy App: builds the services and screens and wires them; no logic of its own."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk import gc_pause
from kiosk.clock import system_time_source
from kiosk.flow import VisitorFlow
from kiosk.i18n import Translator, locale_dir
from kiosk.opening_hours import OpeningHours
from kiosk.opening_watch import OpeningHeartbeat, OpeningWatch
from kiosk.storage_watch import StorageWatch
from kiosk.switcher import QuestionnaireSwitcher
from kiosk.ui import FIRST_FRAME_KV, load_kv, with_kv
from kiosk.ui.admin_control import AdminControl
from kiosk.ui.answers import make_panel
from kiosk.ui.closed import ClosedScreen
from kiosk.ui.comment import CommentScreen
from kiosk.ui.idle import IdleWarning
from kiosk.ui.lazy import LazyWidgets
from kiosk.ui.message_board import MessageBoard
from kiosk.ui.navigator import Navigator
from kiosk.ui.out_of_order import OutOfOrderScreen
from kiosk.ui.question import QuestionScreen
from kiosk.ui.thanks import ThanksScreen
from kiosk.ui.theme import Theme
from kiosk.ui.welcome import WelcomeScreen


class BalieApp(App):
    """The terminal. ``lockdown`` makes window-close and F1 do nothing (kiosk mode).

    Use::

        BalieApp(settings=load_settings(path), questionnaire=q, buffer=Buffer.open(p),
                 device_state=DeviceStateStore(data_dir).load()).run()

    ``device_state``: where and as whom to sync (``None``: not enrolled, sync off).
    Sync runs on APScheduler's own thread; the UI only starts and stops it.
    ``time_source``: the wall clock that ``[opening_hours]`` are read against
    (default the system clocks; tests pass one that follows the Kivy clock).

    Start-up order: ``build()`` makes the welcome screen and its answer panel
    (or, outside opening hours, the closed screen; with a buffer that cannot
    take writes, the out-of-order screen);
    after the first frame is drawn, one step per frame: the buffer loads
    SQLAlchemy (``Buffer.warm_up``), the kept message to visitors is shown
    (``kiosk.message_store``), the other screens, panels and the idle warning
    are made (each with its kv rules),
    then sync is built and started, then ``on_ready`` fires.
    """

    #: Seconds between checks that the sync schedule has not stalled (wall-clock jumps).
    SYNC_WATCHDOG_S = 60

    title = "Balie"
    use_kivy_settings = False

    def __init__(self, *, settings, questionnaire, buffer, lockdown: bool = True,
                 device_state=None, time_source=None, **kwargs):
        super().__init__(**kwargs)
        # Opening hours (None: always open) read the wall clock of time_source (tests pass their own).
        self.opening_hours = OpeningHours.from_settings(settings.opening_hours)
        self.opening_watch: OpeningWatch | None = None
        self.storage_watch: StorageWatch | None = None  # out of order while the buffer refuses writes
        self.time_source = time_source or system_time_source()
        self.started = self.time_source.now()
        self.device_state = device_state
        self.sync = None  # sync.scheduler.SyncScheduler once built (enrolled terminals)
        self.settings = settings
        self._first_questionnaire = questionnaire  # later ones come from central (kiosk.switcher)
        self.switcher: QuestionnaireSwitcher | None = None
        self.questionnaire_fetcher = None  # sync.questionnaire_fetch.QuestionnaireFetcher (enrolled)
        self.buffer = buffer
        self.lockdown = lockdown
        self.theme = Theme.from_settings(settings.theme)
        # Parsed catalogues are kept next to the buffer: the next start skips Babel's reader.
        self.tr = Translator(locale_dir(), settings.languages.default,
                             cache_dir=Path(buffer.path).parent / "cache")
        # The message to visitors: the kept copy after the first frame (it works offline and
        # after a restart), central's after each sync round.
        self.message_board = MessageBoard(self.tr)
        self._message_loaded = False
        self.message_fetcher = None  # sync.message_fetch.MessageFetcher (enrolled)
        self.navigator: Navigator | None = None
        self._warm_up_event = None
        self._buffer_warmed = False
        self.upkeep = None  # kiosk.upkeep.UpkeepSchedule once the app is ready
        self.health = None  # kiosk.health.HealthMonitor after the first frame
        self.admin: AdminControl | None = None  # the hidden gesture, PIN pad and admin screen
        self.is_ready = False  # True once on_ready has fired
        self.register_event_type("on_ready")

    def build(self):
        load_kv(*FIRST_FRAME_KV)  # the other screens' kv rules are loaded as they are made
        settings = self.settings
        flow = VisitorFlow(self.questionnaire, self.buffer,
                           location_id=settings.location.id,
                           language=settings.languages.default,
                           rapid_repeat_s=settings.timeouts.rapid_repeat_s,
                           monotonic=lambda: Clock.time())
        manager = ScreenManager(transition=NoTransition())
        # Only the welcome screen and its panel are made before the first frame;
        # the rest follow one per frame once the terminal is on screen (_warm_up).
        screens = LazyWidgets({
            "welcome": WelcomeScreen,
            "question": with_kv(QuestionScreen, "question.kv"),
            "comment": with_kv(CommentScreen, "keyboard.kv", "comment.kv"),
            "thanks": with_kv(ThanksScreen, "thanks.kv"),
            **({"closed": with_kv(ClosedScreen, "closed.kv")}
               if self.opening_hours is not None else {}),
            "out_of_order": with_kv(OutOfOrderScreen, "out_of_order.kv")})
        screens.on_built(lambda _name, screen: manager.add_widget(screen))
        panels = self._make_panels(self.questionnaire)
        dialogs = LazyWidgets({"idle_warning": with_kv(IdleWarning, "idle.kv")})
        self.navigator = Navigator(manager, screens, panels, dialogs, flow, self.tr,
                                   default_language=settings.languages.default,
                                   languages=settings.languages.available,
                                   timeouts=settings.timeouts)
        self.switcher = QuestionnaireSwitcher(self.navigator, self._make_panels)
        Window.bind(on_touch_down=self.navigator.touched)
        # Bound after the navigator: it sees every touch first (the hidden gesture, staff timeouts).
        self.admin = AdminControl(self, manager, self.navigator)
        # The screens' background: no screen draws a window-sized rectangle of its own
        # (in software rendering each one cost 6 ms a frame; docs/benchmarks.md).
        Window.clearcolor = self.theme.background
        if self.lockdown:
            Window.bind(on_request_close=self._refuse_close)
        if self.opening_hours is not None:  # closed outside them: checked now, then on the Kivy clock
            self.opening_watch = OpeningWatch(self.opening_hours, self.navigator.set_open,
                                              self.time_source)
            self.opening_watch.start()
        # Out of order while the buffer cannot take answers: checked now, then on the Kivy clock.
        self.storage_watch = StorageWatch(self.buffer, self.navigator.set_out_of_order)
        self.storage_watch.start()
        self.navigator.to_welcome()
        return manager

    @property
    def questionnaire(self):
        """The questionnaire visitors are asked now (a new one from central comes between visits)."""
        return self.navigator.flow.questionnaire if self.navigator else self._first_questionnaire

    def _make_panels(self, questionnaire) -> LazyWidgets:
        """The answer panels of ``questionnaire``, each made when first needed."""
        return LazyWidgets({q.id: partial(make_panel, q, self.tr)
                            for q in questionnaire.questions if q.type != "comment"})

    def _build_sync(self):
        """The sync schedule for an enrolled terminal, else ``None`` (logged)."""
        if self.device_state is None:
            logging.getLogger(__name__).info(
                "sync is off: this terminal is not enrolled (run `balie-kiosk enroll URL TOKEN`)")
            return None
        from kiosk.message_store import MessageStore
        from kiosk.questionnaire_store import CentralCopy
        from sync.message_fetch import attach_message_fetcher
        from sync.questionnaire_fetch import attach_fetcher
        from sync.scheduler import build_sync  # requests + APScheduler: imported only when used

        sync = build_sync(self.settings, self.buffer, self.device_state)
        if sync is not None:  # each round also fetches the questionnaire; new ones switch in between visitors
            self.questionnaire_fetcher = attach_fetcher(
                sync.uploader, CentralCopy(self.buffer.path.parent),
                in_use=lambda: self.switcher.in_use, on_new=self.switcher.offer_from_thread)
            self.message_fetcher = attach_message_fetcher(
                sync.uploader, MessageStore(self.buffer.path.parent),
                on_change=self.message_board.offer_from_thread)
        return sync

    def on_start(self):
        # The first frame is drawn after on_start; everything below waits until
        # it is on screen, so the welcome screen answers taps as early as it can.
        Window.bind(on_flip=self._first_frame_drawn)

    def _first_frame_drawn(self, *_args) -> None:
        Window.unbind(on_flip=self._first_frame_drawn)
        Clock.schedule_once(lambda _dt: self._start_watchdog(), 0)  # after this frame's flip
        # `balie-kiosk run` paused the cycle collector for start-up (kiosk.gc_pause).
        Clock.schedule_once(lambda _dt: gc_pause.resume(), 0)
        self._warm_up_event = Clock.schedule_interval(self._warm_up, 0)

    def _start_watchdog(self) -> None:
        """Under systemd (Type=notify): READY=1 now, WATCHDOG=1 from this clock while healthy."""
        from kiosk.health import HealthMonitor, Watchdog
        from kiosk.sdnotify import watchdog_period

        period = watchdog_period()  # half of WatchdogSec; None: no watchdog asked for
        # The buffer is probed as often as the watchdog is fed (15 s with WatchdogSec=30).
        self.health = HealthMonitor(self.buffer, lambda: self.sync,
                                    probe_every_s=max(1.0, period or 20.0))
        watchdog = Watchdog(self.health, period=period)
        if watchdog.period:
            self.health.start()
            Clock.schedule_interval(partial(self._feed_watchdog, watchdog), watchdog.period)
        watchdog.ready()  # does nothing when not run by systemd

    @staticmethod
    def _feed_watchdog(watchdog, _dt) -> None:
        # Returns None on purpose: Kivy cancels an interval whose callback returns
        # False, and tick() returns False while the terminal is unhealthy.
        watchdog.tick()

    def _warm_up(self, _dt) -> bool:
        """One step per frame: the buffer's SQLAlchemy, then each screen, panel and dialog, then sync."""
        navigator = self.navigator
        if not self._buffer_warmed:
            self._buffer_warmed = True
            self.buffer.warm_up()  # SQLAlchemy, deferred by the buffer's fast open
            return True
        if not self._message_loaded:  # the wire models, kept out of the first frame
            self._message_loaded = True
            from kiosk.message_store import MessageStore

            kept = MessageStore(self.buffer.path.parent).load()
            if kept is not None:
                self.message_board.show(kept.document)
            return True
        if (navigator.screens.build_next() or navigator.panels.build_next()
                or navigator.dialogs.build_next()):
            return True
        self._warm_up_event = None
        self.sync = self._build_sync()
        if self.sync is not None:
            self.sync.uploader.heartbeat_extras.append(OpeningHeartbeat(
                self.opening_hours, self.buffer, self.time_source, self.started))
            if self.storage_watch is not None:
                self.sync.uploader.heartbeat_extras.append(self.storage_watch.heartbeat_fields)
            self.sync.start()
            Clock.schedule_interval(lambda _dt: self.sync.watchdog(), self.SYNC_WATCHDOG_S)
        self.upkeep = self._build_upkeep()
        self.is_ready = True
        self.dispatch("on_ready")
        return False

    def _build_upkeep(self):
        """The nightly backup and pruning of the buffer (kiosk/upkeep.py), started."""
        from kiosk.upkeep import Upkeep, UpkeepSchedule

        maintenance = self.settings.maintenance
        schedule = UpkeepSchedule(Upkeep(self.buffer, maintenance), maintenance)
        schedule.start()
        return schedule

    def on_ready(self):
        """Every screen is made and sync (if enrolled) has started."""

    def _refuse_close(self, *_args, **_kwargs) -> bool:
        """Alt+F4 and the window manager's close button do nothing on a kiosk."""
        return True

    def open_settings(self, *_args):
        """F1 does nothing: Kivy's settings panel is not for visitors."""
        return False

    def on_stop(self):
        Window.unbind(on_flip=self._first_frame_drawn)
        if self.upkeep is not None:
            self.upkeep.shutdown()
        if self.health is not None:
            self.health.stop()
        if self._warm_up_event is not None:
            self._warm_up_event.cancel()
            self._warm_up_event = None
        if self.opening_watch is not None:
            self.opening_watch.stop()
        if self.storage_watch is not None:
            self.storage_watch.stop()
        if self.admin is not None:
            self.admin.close()
        if self.sync is not None:
            self.sync.shutdown()  # asks a running round to stop; does not wait for it
        self.buffer.close()
