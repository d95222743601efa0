"""(stage package; see its modules)."""
