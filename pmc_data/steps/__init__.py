"""Document steps: cleaning, filters, license policy, normalisation."""
