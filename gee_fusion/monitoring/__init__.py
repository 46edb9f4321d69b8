"""Monthly monitoring: the monthly-composite job and its configuration."""
