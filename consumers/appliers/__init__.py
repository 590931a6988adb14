"""The only code that writes into the ERP or the CRM."""
