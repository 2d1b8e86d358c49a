"""The mozaggregator recipe: its day tables declared for the export machinery, a generator of
realistic sources, and its verbs (``sluice mozagg``)."""
