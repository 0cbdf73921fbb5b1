"""``resyn report``: one self-contained HTML page about a run (or the whole catalog).

:func:`build_report_data` reads the catalog into a :class:`ReportData` document;
:func:`render_report` turns it into HTML (inline CSS and SVG, no scripts, no network);
:func:`write_report` writes it atomically. Reading and rendering are separate so the data can be
used (and tested) without HTML, and the page without a catalog.
"""

from resyn.report.data import ReportData, build_report_data
from resyn.report.render import ReportWriteError, anchor, render_report, write_report

__all__ = ["ReportData", "ReportWriteError", "anchor", "build_report_data", "render_report", "write_report"]
