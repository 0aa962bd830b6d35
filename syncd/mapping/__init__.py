"""Mapping files: spec, loader, transforms and the compiled mapper."""
