"""`manage.py add_agency`, `add_user` and `seed_demo`."""
