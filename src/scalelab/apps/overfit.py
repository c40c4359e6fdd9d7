"""The overfitting app: ``studies/overfit.toml`` swept into a store, and its analysis
(:func:`scalelab.analysis.overfit.overfit_analysis`) printed.

    scalelab sweep studies/overfit.toml --db runs/overfit.db --runs runs/overfit --workers 2
    python -m scalelab.apps.overfit runs/overfit.db [--json]
"""

from __future__ import annotations

import json
import sys

from scalelab.analysis.overfit import overfit_analysis
from scalelab.errors import ScalelabError


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m scalelab.apps.overfit DB [--json]", file=sys.stderr)
        sys.exit(2)
    try:
        a = overfit_analysis(args[0])
    except ScalelabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(a.to_dict(), indent=1) if "--json" in args else a.describe())


if __name__ == "__main__":
    main()


__all__ = ["main"]
