"""The shared fleet's shape against published inference traces (tests/data/diurnal/README.md).

The seed's daily profiles are assumptions; the published curves span a global conversation
service (Azure, shallow: trough 56 % of the peak) to single-time-zone work-hour services
(Azure coding, Alibaba GenAI: near zero at night). The statistics the loan depends on (busy
share of a peak-sized pool, its idle share with the hour of look-ahead, the share it lends
to training, the hours below half the peak) must lie within the published envelope, widened
by a tolerance for the digitised curves. The chatbot is held to the closest published curve,
BurstGPT's ChatGPT conversations in one time zone, with explicit tolerances. The phase is a
recorded miss: the seed falls from its evening peak to its trough in 7 hours, every
published curve takes 8 to 14.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from accelsim import sharing
from accelsim.fleet.loan import resize_costs, training_workload
from accelsim.fleet.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "diurnal"
PUBLISHED = ("alibaba-genai-qps", "azure-llm-2024-conv", "azure-llm-2024-code",
             "burstgpt-chatgpt-conv")
TOL = 0.05  # absolute, on shares: the digitised curves' line width (~2 % of the peak) and more


def _curve(name: str) -> np.ndarray:
    with open(DATA / f"{name}.csv", newline="") as f:
        return np.array([float(r["load"]) if r["load"] else np.nan for r in csv.DictReader(f)])


SC = load_scenario(ROOT / "configs" / "fleet.yaml")
CKPT_S, RESTART_S = resize_costs(SC.workloads[training_workload(SC) or ""])
SEED = {w: np.asarray(s.daily_profile) for w, s in SC.workloads.items()
        if getattr(s, "daily_profile", None)}


def _stats(p: np.ndarray) -> dict[str, float]:
    s = sharing.profile_shape(p)
    loan = sharing.pool_loan(p, CKPT_S, RESTART_S)
    s["lent_share"] = loan.device_s / 86400
    s["hours_lending_half"] = float((loan.devices > 0.5).sum())
    s["peak_to_trough_hours"] = float((s["trough_hour"] - s["peak_hour"]) % 24)
    return s


PUB = {n: _stats(_curve(n)) for n in PUBLISHED}


def test_published_curves_read_as_cited() -> None:
    """The data files hold what the README says: 24 hours peaking at 1, the phases cited."""
    for n in PUBLISHED:
        c = _curve(n)
        assert len(c) == 24 and np.nanmax(c) == pytest.approx(1.0)
    assert PUB["azure-llm-2024-conv"]["peak_hour"] == 14
    assert PUB["azure-llm-2024-conv"]["peak_to_trough"] == pytest.approx(1.8, abs=0.1)
    assert PUB["azure-llm-2024-code"]["peak_hour"] == 19
    assert np.isnan(_curve("alibaba-genai-qps")[0])
    assert PUB["burstgpt-chatgpt-conv"]["peak_hour"] == 16
    assert PUB["burstgpt-chatgpt-conv"]["trough_hour"] in (3, 4, 5, 6, 7)


ENVELOPE = ("mean_to_peak", "lookahead_idle_share", "lent_share")


@pytest.mark.parametrize("workload", sorted(SEED))
@pytest.mark.parametrize("stat", ENVELOPE)
def test_seed_profile_within_published_envelope(workload: str, stat: str) -> None:
    lo = min(s[stat] for s in PUB.values()) - TOL
    hi = max(s[stat] for s in PUB.values()) + TOL
    v = _stats(SEED[workload])[stat]
    assert lo <= v <= hi, f"{workload} {stat} {v:.3f} outside published [{lo:.3f}, {hi:.3f}]"


@pytest.mark.parametrize("workload", sorted(SEED))
def test_seed_hours_below_half_within_published(workload: str) -> None:
    hours = [s["hours_below_half"] for s in PUB.values()]
    v = _stats(SEED[workload])["hours_below_half"]
    assert min(hours) - 1 <= v <= max(hours) + 1


@pytest.mark.parametrize("workload", sorted(SEED))
def test_seed_trough_below_half_the_peak_as_runway(workload: str) -> None:
    """Runway (2026): 'the trough can be less than half the peak'."""
    assert _stats(SEED[workload])["peak_to_trough"] > 2.0


@pytest.mark.parametrize("workload", sorted(SEED))
def test_phase_is_a_recorded_miss(workload: str) -> None:
    """Peak to trough takes 7 hours in the seed, 8 (Azure conversation) to 14 (Alibaba
    GenAI) in the traces and 11 in Runway's account (9 am to 8 pm ET): the seed's evening
    peak falls faster into the night. Asserted outside so a change that moves it is seen."""
    pub = [s["peak_to_trough_hours"] for s in PUB.values()] + [11.0]
    v = _stats(SEED[workload])["peak_to_trough_hours"]
    assert v < min(pub), f"{workload}: {v} h now within the published {min(pub)}-{max(pub)} h"


HOURS_TOL = 3  # hours: peak and trough hours, hours lending over half the pool
SHARE_TOL = 0.15  # absolute, on the busy, idle and lent shares


def test_chatbot_against_a_chat_service_in_one_time_zone() -> None:
    """BurstGPT's ChatGPT conversations (local time) are the published curve closest to the
    seed's chatbot (a chat app in one country): peak 16 h against the seed's 19 h, trough 4 h
    against 2 h; the seed keeps 0.13 more of a peak-sized pool busy and lends 0.09 less."""
    ref = PUB["burstgpt-chatgpt-conv"]
    seed = _stats(SEED["chatbot"])
    for key in ("peak_hour", "trough_hour"):
        d = abs(seed[key] - ref[key])
        assert min(d, 24 - d) <= HOURS_TOL, key
    # hours that lend more than half the pool: 8 against 10
    assert abs(seed["hours_lending_half"] - ref["hours_lending_half"]) <= HOURS_TOL
    for key in ("mean_to_peak", "lookahead_idle_share", "lent_share"):
        assert abs(seed[key] - ref[key]) <= SHARE_TOL, (key, seed[key], ref[key])


def test_lent_share_tracks_the_idle_share() -> None:
    """The loan uses most of what the look-ahead leaves idle on every curve (the seed's
    minutes-long resize costs against hour-long slots): at least 80 %."""
    for s in [*PUB.values(), *(_stats(p) for p in SEED.values())]:
        assert s["lent_share"] >= 0.8 * s["lookahead_idle_share"]
        assert s["lent_share"] <= s["lookahead_idle_share"] + 1e-12
