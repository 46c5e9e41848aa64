"""Hand-written LSTMs and RNNs in the styles people write, each with a pure adapter (``run``)
to one of gatecheck's family contracts (README, "Contracts"). They are candidates, like a
user's code: they import nothing from gatecheck, and gatecheck checks them with

    python -m gatecheck check examples.assignment:run --family lstm
"""
