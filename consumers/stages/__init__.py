"""The stages a group of changes goes through in a batch (`consumers.batch`), one module each, in this order:

load → lock → recover → situate → decide → settle → announce → write → settle → record

- `load`: each record as its source holds it now; a record gone since its event, or behind a parked change, is
  decided here and goes no further;
- lock (`consumers.situation.lock_situations`): the records' advisory locks, and the keys a creation may take;
- recover (`consumers.recovery.recover`): what batches a crash interrupted wrote about these records, restored
  before anything is read about them;
- `situate`: each record's situation (`consumers.situation.load_situations`, which only reads; keys drawn from a
  number series, `consumers.series`);
- `decide`: the pure decision (`consumers.decisions`);
- `settle`: every way a decision changes after `decide`, in one place;
- `announce`: the writes made known before they are made (`cdc.state.intents`, `cdc.state.update_intents`);
- `write`: the writes, one transaction per system;
- `record`: couplings, counters, errors, parked changes and the record log, in the batch's state transaction.

Each stage works on the group's `consumers.inflight.InFlight` objects, one per change.
"""
