"""Build hook: compile proto/ into the civfed.v1 stubs before packages are found."""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services.protogen import generate

generate()
setup()
