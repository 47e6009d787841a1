"""The action server: `rasa_sdk --actions actions` loads every Action subclass from here."""
from actions import actions  # noqa: F401
