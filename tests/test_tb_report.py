"""Tb O-F histograms of `colmda report` (colmda.evaluation.report.tb_omf / tb_omf_section)."""

import datetime as dt
import html.parser

import numpy as np

from colmda.assim.diagnostics import AnalysisWriter
from colmda.evaluation.report import tb_omf, tb_omf_section
from colmda.parallel import SerialComm


def _write(run_dir, sensors, units, rows, t1):
    w = AnalysisWriter(SerialComm(), run_dir / "analysis", run_dir.name, sensors, 2, units=units)
    return w.write(t1, {"rows": rows, "columns": {"column": np.zeros(0, int)}})


def test_tb_omf_reads_every_tb_run_before_and_after_rescaling(tmp_path):
    """tb_omf collects, per run and polarisation, O - F = value_raw - hx (before) and value - hx (after the
    rescaling) of the USED Tb rows only, from any run directory under the matrix; retrieval-only runs are ignored.
    The section has one embedded figure per run and a table whose means and stds are those of the rows written."""
    rng = np.random.default_rng(1)
    n = 200
    hx = rng.normal(250, 10, n)
    raw = hx + rng.normal(3.0, 5.0, n)  # biased before rescaling
    val = raw - 3.0
    sensor = np.tile([0, 1], n // 2)
    reason = np.where(rng.uniform(size=n) < 0.1, 4, 0)
    t = np.datetime64("2005-06-01T06:00", "s") + np.arange(n).astype("timedelta64[m]")
    rows = {"time": t, "column": np.arange(n) % 7, "sensor": sensor, "value": val, "error": np.full(n, 4.0),
            "reason": reason, "hx": hx, "innovation": val - hx, "value_raw": raw}
    _write(tmp_path / "TB", ("TbH", "TbV"), ("K", "K"), rows, dt.datetime(2005, 6, 2))
    _write(tmp_path / "TB", ("TbH", "TbV"), ("K", "K"), {k: v[:10] for k, v in rows.items()},
           dt.datetime(2005, 6, 3))
    ret = {"time": t[:5], "column": np.arange(5), "sensor": np.zeros(5, int), "value": np.full(5, 0.2),
           "error": np.full(5, 0.04), "reason": np.zeros(5, int), "hx": np.full(5, 0.25),
           "innovation": np.full(5, -0.05)}
    _write(tmp_path / "L", ("L",), ("m3 m-3",), ret, dt.datetime(2005, 6, 2))
    omf = tb_omf(tmp_path)
    assert set(omf) == {"TB"} and set(omf["TB"]) == {"H", "V"}
    for k, pol in enumerate("HV"):
        m = (sensor == k) & (reason == 0)
        m10 = m[:10]
        ref_raw = np.concatenate([(raw - hx)[m], (raw - hx)[:10][m10]])
        ref_res = np.concatenate([(val - hx)[m], (val - hx)[:10][m10]])
        np.testing.assert_allclose(np.sort(omf["TB"][pol]["raw"]), np.sort(ref_raw))
        np.testing.assert_allclose(np.sort(omf["TB"][pol]["rescaled"]), np.sort(ref_res))
    assert abs(omf["TB"]["H"]["raw"].mean() - omf["TB"]["H"]["rescaled"].mean() - 3.0) < 1e-9
    text = tb_omf_section(omf)
    assert text.count("<img ") == 1 and "Tb observation minus forecast" in text
    cells = []

    class P(html.parser.HTMLParser):
        def handle_data(self, data):
            cells.append(data)

    P().feed(text)
    i = cells.index("TB")
    assert cells[i:i + 4] == ["TB", "Tb H", "raw", str(len(omf["TB"]["H"]["raw"]))]
    assert float(cells[i + 4]) == round(float(omf["TB"]["H"]["raw"].mean()), 3)
    assert tb_omf_section({}) == ""
