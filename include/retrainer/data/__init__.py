"""Data: landed files routed, batch files read and checked, validated with Great Expectations,
versioned with DVC; and the demo data."""
