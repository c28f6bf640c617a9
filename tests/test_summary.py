"""The closing table refuses to build without every study's results."""

from __future__ import annotations

import pytest

from simplecnn.studies import summary


def test_missing_results_name_the_command_that_writes_them():
    with pytest.raises(FileNotFoundError, match="make book PROFILE=cpu"):
        summary.headline_table("cpu")


def test_every_study_has_rows():
    assert set(summary.ROWS) == set(summary.STUDIES)
