"""Published measurements, each asserted with its tolerance (README: Validation)."""

import pytest

from accelsim.training.validation import korthikanti_table, narayanan_table
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def narayanan():
    return narayanan_table(ROOT / "tests" / "data" / "narayanan2021_table1.csv")


def test_narayanan2021_every_row_within_10_percent(narayanan):
    assert len(narayanan) == 10
    bad = narayanan[narayanan["error_pct"].abs() > 10]
    assert bad.empty, bad.to_string()


def test_korthikanti2022_mfu_within_10_percent():
    t = korthikanti_table()
    bad = t[t["error_pct"].abs() > 10]
    assert bad.empty, t.to_string()
