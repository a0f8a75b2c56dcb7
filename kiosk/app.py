"""The Kivy App: builds the services and screens and wires them; no logic of its own."""

from __future__ import annotations

import logging

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

    def build(self):
        load_kv()
        settings = self.settings
        flow = VisitorFlow(self.questionnaire, self.buffer,
                           location_id=settings.location.id,
                           language=settings.languages.default,
                           rapid_repeat_s=settings.timeouts.rapid_repeat_s,
                           monotonic=lambda: Clock.time())
        screens = {"welcome": WelcomeScreen(), "question": QuestionScreen(),
                   "comment": CommentScreen(), "thanks": ThanksScreen()}
        manager = ScreenManager(transition=NoTransition())
        for screen in screens.values():
            manager.add_widget(screen)
        panels = {q.id: make_panel(q, self.tr)
                  for q in self.questionnaire.questions if q.type != "comment"}
        self.navigator = Navigator(manager, screens, panels, IdleWarning(), flow, self.tr,
                                   default_language=settings.languages.default,
                                   languages=settings.languages.available,
                                   timeouts=settings.timeouts)
        Window.bind(on_touch_down=self.navigator.touched)
        Window.clearcolor = self.theme.background
        if self.lockdown:
            Window.bind(on_request_close=self._refuse_close)
        self.navigator.to_welcome()
        self.sync = self._build_sync()
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
        if self.sync is not None:
            self.sync.start()
            Clock.schedule_interval(lambda _dt: self.sync.watchdog(), self.SYNC_WATCHDOG_S)

    def _refuse_close(self, *_args, **_kwargs) -> bool:
        """Alt+F4 and the window manager's close button do nothing on a kiosk."""
        return True

    def open_settings(self, *_args):
        """F1 does nothing: Kivy's settings panel is not for visitors."""
        return False

    def on_stop(self):
        if self.sync is not None:
            self.sync.shutdown()  # asks a running round to stop; does not wait for it
        self.buffer.close()
