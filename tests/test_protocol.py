"""The analysis-method protocol and registry (colmda.assim.base) as the cycle of colmda.run uses it.

- test_registry: the built-in methods are registered ('none', 'sekf', 'image'); an unknown name is a one-line
  UserError naming the closest registered one; a second class under a taken name is refused; the namelist's
  choices and keys come from the registry (config aggregates the SEKF's and the image analysis's keys, the
  &matrix method key accepts only methods that analyse).
- test_cycle_runs_a_method_through_the_protocol: a method passed to run() (real core, synthetic columns) asks for
  extra forecasts (exact copies of two columns) and a per-step record; the cycle batches the copies into the same
  core calls (their end state is bit for bit the background's, and the records are stacked over the steps),
  applies the method's increment through the consistency layer (the state after the window is background +
  bounded increment; a huge increment is clipped at porosity) and hands the report to write_diagnostics, whose
  water added equals the change of the columns' soil water.
- test_method_keys_and_checks_are_the_methods: the SEKF's length checks and the observation-source check are
  made when the namelist is loaded, by the method's own validate().
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import mpi_helpers as H  # noqa: E402

from colmda import config  # noqa: E402
from colmda import layout as L  # noqa: E402
from colmda import run as R  # noqa: E402
from colmda.assim import base  # noqa: E402
from colmda.assim.base import Analysis, AnalysisMethod, ForecastRequest  # noqa: E402
from colmda.constants import DENH2O, DENICE  # noqa: E402
from colmda.errors import UserError  # noqa: E402

BASE = """
&experiment
  name = 'proto'
  start = '2005-06-01'
  end = '2005-06-03'
/
&domain
  box = -40.0, 60.0, -60.0, 80.0
/
&output
  restart_days = 0
/
"""


def test_registry():
    names = base.names()
    assert {"none", "sekf", "image"} <= set(names)
    with pytest.raises(UserError, match=r"'sekff' is not a registered analysis method; did you mean 'sekf'"):
        base.get("sekff", "x.nml")

    class Other(AnalysisMethod):
        name = "sekf"

    with pytest.raises(ValueError, match="registered twice"):
        base.register(Other)
    assert base.get("sekf").__module__ == "colmda.assim.hooks"
    # config aggregates the methods' keys and groups
    a = config.KEYS_BY_GROUP["assimilation"]
    assert {"control_layers", "perturbation", "two_sided", "propagation", "background_error"} <= set(a)
    assert "image" in config.GROUPS and "nscales" in config.KEYS_BY_GROUP["image"]
    assert "enkf" in config.GROUPS and "localization_km" in config.KEYS_BY_GROUP["enkf"]
    assert {base.get(n).members for n in ("enkf", "etkf", "letkf")} == {"ensemble"}
    with pytest.raises(UserError, match=r"&assimilation method = 'enkff': expected one of 'none', 'sekf', 'image', "
                                        r"'enkf', 'etkf', 'letkf'"):
        config.loads("&assimilation\n method = 'enkff'\n/\n")
    with pytest.raises(UserError, match=r"&matrix method = 'none': expected a registered analysis method other"):
        config.loads("&matrix\n method = 'none'\n/\n")


class CopyAndNudge(AnalysisMethod):
    """Extra forecasts: exact copies of local columns 0 and 1; record: top-layer liquid after every step; analysis:
    +0.02 m3 m-3 in the top layer of every column and +5 m3 m-3 (far beyond porosity) in column 2."""

    name = "copy_and_nudge"

    def __init__(self):
        super().__init__(None, None, None)
        self.seen = []

    def plan(self, ctx):
        pos = np.array([0, 1])
        return ForecastRequest(extra=ctx.state.take(pos), extra_positions=pos,
                               record=lambda b: {"liq_top": b.wliq_soisno[L.NSNOW_MAX].copy()},
                               payload={"window": ctx.window_index})

    def analyse(self, ctx, request, forecast):
        st = ctx.state
        assert request.payload["window"] == ctx.window_index
        for k in range(2):  # a copy advanced in the same core calls ends exactly where its column does
            for name, v in forecast.extra_end.arrays().items():
                assert np.array_equal(v[..., k], getattr(st, name)[..., k]), name
        rec = forecast.records["liq_top"]
        assert rec.shape == (ctx.settings.steps_per_window, st.ncol + 2)
        assert np.array_equal(rec[-1, :st.ncol], st.wliq_soisno[L.NSNOW_MAX])
        self.before = st.copy()
        inc = np.full((1, st.ncol), 0.02)
        inc[0, 2] = 5.0
        return Analysis(np.arange(st.ncol), inc, {"window": ctx.window_index})

    def write_diagnostics(self, ctx, analysis, report):
        self.seen.append((analysis.diagnostics["window"], report, self.before, ctx.state.copy(), ctx.params))


def test_cycle_runs_a_method_through_the_protocol(tmp_path):
    s = config.loads(BASE, source="proto.nml", overrides=[f"output.directory={tmp_path / 'r'}"])
    method = CopyAndNudge()
    R.run(s, inputs=H.synthetic_inputs(s), analysis=method, progress=False)
    assert [w for w, *_ in method.seen] == [0, 1]
    for _, rep, before, after, params in method.seen:
        s0 = L.NSNOW_MAX
        dz = params.dz_soil[0]
        theta_b = before.wliq_soisno[s0] / DENH2O / dz + before.wice_soisno[s0] / DENICE / dz
        theta_a = after.wliq_soisno[s0] / DENH2O / dz + after.wice_soisno[s0] / DENICE / dz
        por = params.soilpar[L.SP_THETA_S, 0]
        warm = before.t_soisno[s0] > 273.16
        assert warm.any()
        assert np.allclose(theta_a[2], por[2] if warm[2] else theta_b[2])  # clipped at porosity
        ok = warm & (np.arange(len(warm)) != 2) & (theta_b + 0.02 <= por)
        assert ok.any() and np.allclose(theta_a[ok] - theta_b[ok], 0.02)
        assert np.array_equal(after.wliq_soisno[s0 + 1:], before.wliq_soisno[s0 + 1:])  # other layers untouched
        assert np.allclose(rep.water_added, (after.wliq_soisno[s0] - before.wliq_soisno[s0]), atol=1e-12)


def test_method_keys_and_checks_are_the_methods(tmp_path):
    with pytest.raises(UserError, match=r"&assimilation perturbation: 2 value\(s\) for control_layers = 7"):
        config.loads("&assimilation\n method = 'sekf'\n perturbation = 0.001, 0.001\n/\n")
    with pytest.raises(UserError, match=r"&observations directory: required for &assimilation method = 'sekf'"):
        config.loads("&assimilation\n method = 'sekf'\n/\n")
    # the same lengths are no concern of a control run
    config.loads("&assimilation\n method = 'none'\n perturbation = 0.001, 0.001\n/\n")
