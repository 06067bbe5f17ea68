"""The quality package's public names are the intended ones."""

import advertisex.quality as quality


def test_public_names() -> None:
    assert sorted(quality.__all__) == sorted(
        [
            "CHECKS",
            "Alert",
            "CycleResult",
            "Finding",
            "Severity",
            "list_alerts",
            "run_checks",
            "run_cycle",
            "watch",
        ]
    )
    assert all(hasattr(quality, name) for name in quality.__all__)
    assert len({c.name for c in quality.CHECKS}) == len(quality.CHECKS) == 18
