"""Sample generators and the check matrix, shared by tests/ and the coverage report.

Imports: torch_fwdad, _generated, engine.
"""

from .samples import ErrorSample, Sample, samples_for, sample_registry
from .checks import CHECKS, run_check

__all__ = ["CHECKS", "ErrorSample", "Sample", "run_check", "sample_registry", "samples_for"]
