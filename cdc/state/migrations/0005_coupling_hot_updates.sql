-- A coupling is rewritten on every change of its records (its fingerprints), never its keys: room on each page
-- lets PostgreSQL update it in place (a HOT update, no index entries), and pages are pruned as they are read.
ALTER TABLE cdc.couplings SET (fillfactor = 70);
