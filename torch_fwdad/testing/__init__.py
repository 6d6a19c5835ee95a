"""Sample generators and the check matrix, shared by tests/ and the coverage report.

Imports: torch_fwdad, _generated, engine.
"""

from .samples import ErrorSample, Sample, expected_failure, samples_for, sample_registry
from .checks import CHECKS, plain_pytorch

__all__ = ["CHECKS", "ErrorSample", "Sample", "expected_failure", "plain_pytorch", "sample_registry", "samples_for"]
