"""Web pages and endpoints, one module per audience."""
