"""The continuous-training loop: evaluation gates, schedules and triggers, and the loop's
persisted state machine (triggered -> training -> gating -> awaiting approval -> canary ->
comparing -> promoted | rolled back | rejected | failed), with lineage end to end.
"""
