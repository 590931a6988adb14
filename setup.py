"""Optional C accelerators of capture's hot path; each has a pure-Python twin that runs when it could not be built
(no compiler): `optional=True` lets the install go on without them."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("cdc.capture._tuples", ["cdc/capture/_tuples.c"], optional=True),
    Extension("cdc.topics._murmur2", ["cdc/topics/_murmur2.c"], optional=True),
])
