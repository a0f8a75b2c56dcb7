"""The out-of-order screen: shown while the buffer cannot store answers; it invites no ratings.

The navigator shows it instead of the welcome (or closed) screen while the
terminal is out of order (:mod:`kiosk.storage_watch`), and to the visitor
whose answer could not be stored. It has no buttons: a tap changes nothing,
except the staff's hidden gesture on the logo (kiosk/ui/admin_control.py).
"""

from __future__ import annotations

from kivy.uix.screenmanager import Screen


class OutOfOrderScreen(Screen):
    """Says calmly that the terminal does not work now and asks the visitor to come back later."""
