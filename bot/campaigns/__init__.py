"""Safety campaigns (反诈, 防溺水 …) beyond the broadcast: what reaches every household."""
