"""The LED bus: window and hall screens on RS-485 (Onbon BX-5K/6K, EQ2023) and BX-6 network
controllers — codecs, the sans-IO link session, supervision and the agents."""
