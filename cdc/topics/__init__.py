"""Kafka topics: their creation and the producer that writes change events to them."""
