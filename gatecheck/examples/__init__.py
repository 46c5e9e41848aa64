"""Implementations that ship with gatecheck, for a first run with nothing of one's own
(``python -m gatecheck demo``): a course-style LSTM under the lstm family's contract
(course.py), and the same LSTM with one slip in its backward pass (course_buggy.py). Like
the repository's examples/, they are candidates: they import nothing from the rest of
gatecheck, and gatecheck checks them as it checks anyone's code:

    python -m gatecheck check gatecheck.examples.course:run --family lstm
"""
