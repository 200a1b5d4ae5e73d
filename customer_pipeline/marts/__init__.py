"""Customer-360 marts: purchases tied to golden customers, RFM segments, basket rules, recommendations (docs/marts.md)."""
