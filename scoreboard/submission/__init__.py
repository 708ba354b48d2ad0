"""Flag submission: one judge (verdicts.py, judge.py) behind the TCP dialects and HTTP."""
