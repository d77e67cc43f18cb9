"""Build the compiled modules from the sources in ``ext/``: the core ``raresketch._core`` and the ECS JSON-lines
projector ``raresketch._json`` (with the vendored yyjson, ``ext/yyjson/``)."""
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("RARESKETCH_DEBUG", "0") == "1"

extensions = [
    Extension(
        "raresketch._core",
        sources=["ext/_core.pyx"],
        include_dirs=["ext", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not debug else ["-O0", "-g"],
    ),
    # ECS JSON lines -> Arrow columns (ext/rs_json.h) on the vendored yyjson (ext/yyjson/, MIT).
    Extension(
        "raresketch._json",
        sources=["ext/_json.pyx", "ext/yyjson/yyjson.c"],
        include_dirs=["ext"],
        define_macros=[("YYJSON_DISABLE_WRITER", "1"), ("YYJSON_DISABLE_UTILS", "1"),
                       ("YYJSON_DISABLE_NON_STANDARD", "1")],
        extra_compile_args=["-O3"] if not debug else ["-O0", "-g"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": debug,
            "binding": True,
            "embedsignature": True,
        },
    ),
)
