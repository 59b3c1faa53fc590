"""``scripts/novabench``: the real nova-api 34.0.0 ÷ cellgate on the same databases, from
one run (issue #20).

One private PostgreSQL server holds an API database, 8 cells seeded with Nova-readable
rows (Nova's own DDL, then cellgate's seeder) and nova-api's own ``[database]``; nova-api
(``scripts/nova_api``, gunicorn) and ``cellgate serve`` run with the same number of worker
processes on them, both asking the same empty Neutron for the detail view's security
groups. Requests alternate between the two servers, one at a time.

Modules: ``data`` (the server and its databases; a cell refusing connections), ``serve``
(the two servers), ``measure`` (alternating requests, marker walks), ``figures`` (typed
results, ratios), ``report`` (``docs/bench/nova-api.md`` and its JSON), ``__main__``
(the command line).
"""
