"""Pure spatial logic for gridwork: grid codes, datums, measures, validation, evidence, routing."""
