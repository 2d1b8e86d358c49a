"""Recipes: declarations of the seed systems' tables, patterns and verbs. A recipe only declares;
the shared packages do the work."""
