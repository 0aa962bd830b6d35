"""The reconcile engine: pipeline, conflict rules, scheduler and inbox dispatcher."""
