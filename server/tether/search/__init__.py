"""The shared search kit: MLflow's search grammar (filters, order_by, page tokens) and the SQL
it becomes. Each domain owns its search and builds it from these modules:
`tether.tracking.runs.search`, `tether.tracking.experiments.search`,
`tether.tracking.logged_models.search` and `tether.registry.search`.

- `tokenizer`: the lexer every filter and order_by parser reads (after sqlparse's rules).
- `filter_syntax`: the shape of a filter (clauses, comparators, values, lists).
- `grammar`: the vocabulary of run and experiment searches (entities, attributes, comparators)
  and the parsed `Comparison` / `OrderBy`.
- `identifiers`: `entity.key` identifiers, split and resolved as MLflow does.
- `values`: a clause's value and comparator checks, shared with the registry's grammar.
- `filter_parser` / `order_by`: run and experiment filters and order_by clauses.
- `experiment_ids`: the one experiment-id parser.
- `page_token`: MLflow's offset page tokens; `limits`: max_results checks.
- `sql`: `compare` (a comparator in SQL, per backend), the dialect, view types.

Only public names cross a package boundary (`tests/test_private_imports.py`).
"""
