"""The sync engine: consumers read change events, decide per record what the mapping says, and apply it."""
