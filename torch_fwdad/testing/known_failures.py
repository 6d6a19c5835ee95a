"""The one table of expected failures: (entry, check) -> the reason it cannot pass.

tests/ mark these xfail(strict=True), so an entry that starts passing is reported.
"""

KNOWN_FAILURES: dict[tuple[str, str], str] = {}
