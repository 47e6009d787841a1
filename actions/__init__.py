"""The custom actions, loaded by the action server (`python -m scripts.action_server`) from this package."""
from actions import actions  # noqa: F401
