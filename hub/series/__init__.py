"""Time-series storage: one :class:`~hub.series.base.SeriesStore` seam, several real backends."""
