"""Hand-written LSTMs and GRUs with real bugs, in the styles people write them (step functions,
classes with a cache, fused weights, loops, float32 buffers, masks): what the diagnosis
(``python -m gatecheck verify MODULE:run --family lstm``, ``--family gru``, ``--options mask``) has
to name or localise (tests/tools/test_diagnosis_real.py, tests/tools/test_diagnosis_semantics.py).
Like every example they import nothing from gatecheck or the reference; each module's docstring
says what is wrong."""
