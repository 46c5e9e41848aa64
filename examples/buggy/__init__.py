"""Hand-written LSTMs with real bugs, in the styles of ``examples/``: what the diagnosis
(``python -m gatecheck verify MODULE:run --family lstm``) has to name or localise. Like
every example they import nothing from gatecheck or the reference; each module's docstring
says what is wrong."""
