"""The shipped real-data experiment (namelists/hawaii_2017.nml, docs/results-real.md): open loop, SEKF assimilating
the real ASCAT H113 cell file after CDF matching, evaluation against the COSMOS SilverSword station. CI runs two
months without spin-up; the full year (the numbers in docs/results-real.md) is the slow test."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colmda import config
from colmda.obs.bias import read_bias
from colmda.run import run

ROOT = Path(__file__).resolve().parents[1]
NML = 'namelists/hawaii_2017.nml'


def _runs(tmp_path, end, spinup):
    ol, da = tmp_path / 'ol', tmp_path / 'da'
    common = [f'experiment.end={end}', f'experiment.spinup_max_cycles={spinup}',
              f'observations.bias_reference_run={ol}', f'observations.bias_file={ol}/bias.nc']
    s_ol = config.load(NML, overrides=common + ['assimilation.method=none', f'output.directory={ol}',
                                                'experiment.name=ol'])
    s_da = config.load(NML, overrides=common + [f'output.directory={da}'])
    run(s_ol, progress=False)
    res = run(s_da, progress=False)
    return ol, da, res


def test_hawaii_shortened_end_to_end(tmp_path, monkeypatch):
    """Two months from the shipped namelist and data (paths relative to the repository root): the ASCAT retrievals
    over the station's cell are read, CDF-matched to the open loop (parameters fitted, written and usable), all
    used by the SEKF with per-sensor O-B statistics in the run summary, and `colmda evaluate` scores DA and open
    loop against the station with confidence intervals and dR."""
    monkeypatch.chdir(ROOT)
    ol, da, res = _runs(tmp_path, '2017-03-01', 0)
    b = read_bias(ol / 'bias.nc')
    assert b.method == 'cdf' and b.sensors == ('ASCAT',) and b.n_pairs[0, 0] >= b.min_pairs
    o = res.summary['innovations']['ASCAT']
    assert o['used'] > 50 and o['analyses'] == 59
    assert abs(o['omf_mean']) < 0.03 and 0.005 < o['omf_std'] < 0.15     # matched to the model climatology
    p = subprocess.run([sys.executable, '-m', 'colmda', 'evaluate', str(da), '--openloop', str(ol), '--insitu',
                        'namelists/hawaii_2017/ismn', '--no-figures'], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    r = json.loads((da / 'evaluation/insitu.json').read_text())
    s, = r['stations']
    assert s['station'].startswith('COSMOS/SilverSword') and s['days'] == 59
    for k in ('DA', 'open_loop'):
        for m in ('R', 'anomaly_R', 'ubRMSE', 'bias'):
            v, lo, hi = s['scores'][k][m]
            assert lo <= v <= hi and np.isfinite(v)
    assert s['dR'][1] <= s['dR'][0] <= s['dR'][2]
    assert 'DA - open loop' in p.stdout


@pytest.mark.slow
def test_hawaii_full_year_reproduces_results(tmp_path, monkeypatch):
    """The full experiment of docs/results-real.md (2017 after spin-up): the scores quoted there."""
    monkeypatch.chdir(ROOT)
    ol, da, res = _runs(tmp_path, '2018-01-01', 6)
    from colmda.evaluation.ismn import evaluate
    r = evaluate(da, 'namelists/hawaii_2017/ismn', ol, figure=False)
    s, = r['stations']
    assert s['days'] == 365
    assert s['scores']['open_loop']['R'][0] == pytest.approx(0.40, abs=0.005)
    assert s['scores']['DA']['R'][0] == pytest.approx(0.50, abs=0.005)
    assert s['scores']['open_loop']['anomaly_R'][0] == pytest.approx(-0.10, abs=0.005)
    assert s['scores']['DA']['anomaly_R'][0] == pytest.approx(0.17, abs=0.005)
    assert s['scores']['DA']['ubRMSE'][0] == pytest.approx(0.053, abs=0.0005)
    assert s['d_anomaly_R'][0] == pytest.approx(0.266, abs=0.002) and s['d_anomaly_R'][1] > 0
