"""The study report: ``report(db, out)`` writes one self-contained ``index.html`` with its PNGs.

Sections are built by functions in :mod:`scalelab.reporting.sections` (``BUILDERS``); plotting
helpers shared by every section live in :mod:`scalelab.reporting.plots`.
"""

from scalelab.reporting.page import ReportResult, report
from scalelab.reporting.sections import BUILDERS, ReportContext, Section

__all__ = ["BUILDERS", "ReportContext", "ReportResult", "Section", "report"]
