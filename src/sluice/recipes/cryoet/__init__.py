"""CryoET: a bucket hierarchy of JSON metadata → relational tables, synced per dataset."""
