"""Documentation generators and pages for the io-models servers."""
