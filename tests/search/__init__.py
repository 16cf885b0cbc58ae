"""Search: the filter / order_by parsers against MLflow's, and the SQL search on both backends."""
