"""Package data of the dashboard (a package so that setuptools ships its files)."""
