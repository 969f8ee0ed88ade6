"""Static files of the plain operator page."""
