"""syncd: two-way sync between CRMs and accounting systems."""
