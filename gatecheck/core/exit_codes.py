"""The exit codes of every ``python -m gatecheck`` command: one table, which ``--help`` and
the docs (docs/reference/exit-codes.md, generated) print.

A problem with the request itself (an argument, a setting, a file or path that cannot be
read or written) is always 2, never 1: 1 means that something was measured and found wrong.
"""

PASS, FAIL, USAGE, FORWARD_ONLY, PARTIAL = 0, 1, 2, 3, 4
EXIT_CODES = {
    PASS: "success: every case compared matches and the backward pass was compared; no drift; "
          "every mutant killed; the file written",
    FAIL: "a mismatch, drift, a surviving mutant, or a candidate error (it raised, broke the contract, "
          "or left nothing to compare)",
    USAGE: "usage: a bad argument or setting, a file or path that cannot be read or written, "
           "a candidate that does not load, no oracle that can run, or no case that an oracle could judge "
           "(`NOT JUDGED`: a known deviation covers every quantity compared)",
    FORWARD_ONLY: "matches, but no gradient was compared (forward only)",
    PARTIAL: "matches, but part of what was asked did not run: some oracles could not (a framework is missing), or "
             "a combination of the options the candidate declares has no case in the run (the report names it, why, and how "
             "to get it run)",
}


def markdown_table() -> str:
    """The table of the docs, row by row from EXIT_CODES."""
    return "\n".join(["| code | meaning |", "|---|---|"]
                     + [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()])
