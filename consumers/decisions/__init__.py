"""Pure decisions: given a change, its coupling, the partner row and the mapping — what happens. No I/O here."""
