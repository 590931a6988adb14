"""Event-driven change-data-capture that keeps an ERP and a CRM in sync through Kafka."""

__version__ = "0.1.0"
