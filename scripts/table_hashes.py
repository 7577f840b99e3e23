"""Print a hash of every results table of a scenario over a few seeds: a refactor must not change
them.

Run it on two commits and compare the outputs (identical lines: identical tables)::

    python scripts/table_hashes.py > before.txt      # on the old commit
    python scripts/table_hashes.py | diff before.txt -  # on the new one

Options: ``--scenario`` (default ``brussels-metro``), ``--seeds`` (default 0 1 2), ``--years``
(default 12).
"""

from __future__ import annotations

import argparse
import hashlib

import pandas as pd

from relocsim import RelocationModel, load_scenario


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 (first 16 hex digits) of a table's values, row order and column names."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).values.tobytes())
    digest.update(",".join(map(str, table.columns)).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="brussels-metro")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--years", type=int, default=12)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    for seed in args.seeds:
        results = RelocationModel(scenario, seed=seed).run(args.years)
        for name, table in results.tables().items():
            print(f"seed={seed} {name} rows={len(table)} {table_hash(table)}")


if __name__ == "__main__":
    main()
