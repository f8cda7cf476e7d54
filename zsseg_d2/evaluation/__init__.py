"""GZS3 and open-vocabulary evaluators."""
