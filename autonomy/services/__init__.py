"""Autonomy services: the lane run and its ledger record (`lane`), the scheduled tick
(`schedule`), readiness dry runs (`readiness`), and promotion actions (`promotion`)."""
