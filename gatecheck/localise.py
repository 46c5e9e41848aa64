"""Where an unexplained error is born: the candidate rerun on isolating cases."""


def localise(candidate, case, family, name="candidate"):
    return []
