"""Study 3: the price of the software moat. Throughput per dollar of the Ascend-only fleet as
both Ascend parts' achieved efficiencies move from today's estimate to CUDA (H100) parity,
with 5-95 % bands from the profiles' uncertainty ranges (--samples).
Writes results/software_maturity.{csv,png,svg}. Run: python benchmarks/study_software_maturity.py"""

from __future__ import annotations

from accelsim.plots import sweep_plot
from accelsim.sweep import Param

from _study import args, run

X = "devices.ascend-910b,ascend-910c.cuda_parity"
Y = "fleet.domestic-only.training_tokens_per_day / fleet.domestic-only.tco_usd_per_year"


def main() -> None:
    a = args()
    df = run("software_maturity", a.out, a.quick, a.workers, {X: Param(low=0, high=1, num=3)},
             samples=4 if a.quick else 24)
    # (tokens/day) / (USD/year) x 365.25 days/year = tokens per USD
    df["tokens per USD"] = df[Y] * 365.25
    for b in ("[p05]", "[p95]"):
        df[f"tokens per USD {b}"] = df[f"{Y} {b}"] * 365.25
    sweep_plot(df, a.out / "software_maturity.png", x=X, y="tokens per USD", kind="line",
               labels={X: "Ascend software maturity: 0 = today's estimate, 1 = CUDA parity",
                       "tokens per USD": "domestic fleet training tokens per USD of TCO"},
               title="Ascend-only fleet: training throughput per dollar vs. software maturity")
    lo, hi = df["tokens per USD"].iloc[0], df["tokens per USD"].iloc[-1]
    print(f"domestic fleet: {lo:,.0f} tokens/USD today -> {hi:,.0f} at CUDA parity "
          f"({100 * (hi / lo - 1):+.0f} %); H20 alone: "
          f"{df['device.h20.training.throughput_per_usd'].iloc[0]:,.0f} tokens/USD")


if __name__ == "__main__":
    main()
