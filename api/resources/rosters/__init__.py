"""The roster resources: settings, leave, rosters, shifts, swaps and calendar feeds."""
