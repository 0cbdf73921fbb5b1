"""The generator–verifier check suite: static checks, then sandboxed dynamic checks.

:func:`run_checks` runs everything and returns a :class:`CheckReport`; thresholds live in
:class:`CheckConfig`, each with its reason.
"""

from resyn.checks.config import CheckConfig
from resyn.checks.report import CheckReport, CheckResult, Evidence
from resyn.checks.runner import CHECK_NAMES, run_checks

__all__ = ["CHECK_NAMES", "CheckConfig", "CheckReport", "CheckResult", "Evidence", "run_checks"]
