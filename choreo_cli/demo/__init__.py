"""The embedded default: ``choreo demo`` runs the whole pipeline in one process tree."""
