"""The wire contracts shared by producers and consumers: the change event and the dead letter."""

from schemas.change_event import SCHEMA_VERSION, ChangeEvent, EventDecodeError, ReplayInfo, Source

__all__ = ["SCHEMA_VERSION", "ChangeEvent", "EventDecodeError", "ReplayInfo", "Source"]
