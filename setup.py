"""Build the compiled core ``raresketch._core`` from the Cython sources in ``ext/``."""
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
    )
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
