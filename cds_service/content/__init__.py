"""The clinical content of `cards/`: `schema.py` the shape of each file, `loader.py` reading and
cross-checking them into one `Content` at start, `wording.py` how numbers and lists are written."""
