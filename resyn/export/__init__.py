"""Exporting catalog environments into trainers: rendered instances, their environment modules, a
manifest and a reward entry point per trainer format (see :mod:`resyn.export.formats`)."""
