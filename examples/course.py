"""The course-style LSTM, under its old name: it ships in the package as
gatecheck/examples/course.py (so that ``python -m gatecheck demo`` runs after a plain install),
and this module re-exports it, so that ``examples.course:run`` and ``from examples import
course`` keep working with one copy of the code.
"""

from gatecheck.examples.course import *  # noqa: F403 (the style's functions, for examples.course_head)
from gatecheck.examples.course import run  # noqa: F401 (the candidate, named explicitly)
