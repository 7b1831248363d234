"""The REST API (DRF): thin adapters over the same selectors and FilterSets as the HTML inbox."""
