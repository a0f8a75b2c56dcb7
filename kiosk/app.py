"""The Kivy App: builds the services and screens and wires them; no logic of its own."""

from __future__ import annotations

import logging
from functools import partial

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.flow import VisitorFlow
from kiosk.i18n import Translator, locale_dir
from kiosk.ui import load_kv
from kiosk.ui.answers import make_panel
from kiosk.ui.comment import CommentScreen
from kiosk.ui.idle import IdleWarning
from kiosk.ui.lazy import LazyWidgets
from kiosk.ui.navigator import Navigator
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

    Start-up order: ``build()`` makes the welcome screen and its answer panel;
    after the first frame is drawn, one step per frame: the buffer loads
    SQLAlchemy (``Buffer.warm_up``), the other screens and panels are made,
    then sync is built and started, then ``on_ready`` fires.
    """

    #: Seconds between checks that the sync schedule has not stalled (wall-clock jumps).
    SYNC_WATCHDOG_S = 60

    title = "Balie"
    use_kivy_settings = False

    def __init__(self, *, settings, questionnaire, buffer, lockdown: bool = True,
                 device_state=None, **kwargs):
        super().__init__(**kwargs)
        self.device_state = device_state
        self.sync = None  # sync.scheduler.SyncScheduler once built (enrolled terminals)
        self.settings = settings
        self.questionnaire = questionnaire
        self.buffer = buffer
        self.lockdown = lockdown
        self.theme = Theme.from_settings(settings.theme)
        self.tr = Translator(locale_dir(), settings.languages.default)
        self.navigator: Navigator | None = None
        self._warm_up_event = None
        self._buffer_warmed = False
        self.is_ready = False  # True once on_ready has fired
        self.register_event_type("on_ready")

    def build(self):
        load_kv()
        settings = self.settings
        flow = VisitorFlow(self.questionnaire, self.buffer,
                           location_id=settings.location.id,
                           language=settings.languages.default,
                           rapid_repeat_s=settings.timeouts.rapid_repeat_s,
                           monotonic=lambda: Clock.time())
        manager = ScreenManager(transition=NoTransition())
        # Only the welcome screen and its panel are made before the first frame;
        # the rest follow one per frame once the terminal is on screen (_warm_up).
        screens = LazyWidgets({"welcome": WelcomeScreen, "question": QuestionScreen,
                               "comment": CommentScreen, "thanks": ThanksScreen})
        screens.on_built(lambda _name, screen: manager.add_widget(screen))
        panels = LazyWidgets({q.id: partial(make_panel, q, self.tr)
                              for q in self.questionnaire.questions if q.type != "comment"})
        self.navigator = Navigator(manager, screens, panels, IdleWarning(), flow, self.tr,
                                   default_language=settings.languages.default,
                                   languages=settings.languages.available,
                                   timeouts=settings.timeouts)
        Window.bind(on_touch_down=self.navigator.touched)
        Window.clearcolor = self.theme.background
        if self.lockdown:
            Window.bind(on_request_close=self._refuse_close)
        self.navigator.to_welcome()
        return manager

    def _build_sync(self):
        """The sync schedule for an enrolled terminal, else ``None`` (logged)."""
        if self.device_state is None:
            logging.getLogger(__name__).info(
                "sync is off: this terminal is not enrolled (run `balie-kiosk enroll URL TOKEN`)")
            return None
        from sync.scheduler import build_sync  # requests + APScheduler: imported only when used

        return build_sync(self.settings, self.buffer, self.device_state)

    def on_start(self):
        # The first frame is drawn after on_start; everything below waits until
        # it is on screen, so the welcome screen answers taps as early as it can.
        Window.bind(on_flip=self._first_frame_drawn)

    def _first_frame_drawn(self, *_args) -> None:
        Window.unbind(on_flip=self._first_frame_drawn)
        self._warm_up_event = Clock.schedule_interval(self._warm_up, 0)

    def _warm_up(self, _dt) -> bool:
        """One step per frame: the buffer's SQLAlchemy, then each screen and panel, then sync."""
        navigator = self.navigator
        if not self._buffer_warmed:
            self._buffer_warmed = True
            self.buffer.warm_up()  # SQLAlchemy, deferred by the buffer's fast open
            return True
        if navigator.screens.build_next() or navigator.panels.build_next():
            return True
        self._warm_up_event = None
        self.sync = self._build_sync()
        if self.sync is not None:
            self.sync.start()
            Clock.schedule_interval(lambda _dt: self.sync.watchdog(), self.SYNC_WATCHDOG_S)
        self.is_ready = True
        self.dispatch("on_ready")
        return False

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
        if self._warm_up_event is not None:
            self._warm_up_event.cancel()
            self._warm_up_event = None
        if self.sync is not None:
            self.sync.shutdown()  # asks a running round to stop; does not wait for it
        self.buffer.close()
