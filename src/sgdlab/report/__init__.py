"""Figures and reports. Reads run directories only; never computes training quantities."""
