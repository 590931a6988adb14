"""The demo ERP and CRM: schemas, seed generator and load generator."""
