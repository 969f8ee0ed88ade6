"""Governance levels: drill-down and roll-up over the grid-code hierarchy (district → street → community → grid)."""
