"""Build hook: compiles the C sources under firmware/ into cffi extensions.

Everything else about the package lives in pyproject.toml; setuptools only reads cffi_modules from here.
"""
from setuptools import setup

setup(
    cffi_modules=[
        "python/bowlsense/frontend/_build.py:ffibuilder",
        "python/bowlsense/nn/_build.py:ffibuilder",
    ],
)
