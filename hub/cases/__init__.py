"""The grid case workflow: grid model, routing, case machine, SLA, audit, storage, API and Open311."""
