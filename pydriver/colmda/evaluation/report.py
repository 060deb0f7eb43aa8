"""Self-contained HTML report of a twin matrix run (``colmda report RUNDIR``), seed 004's evaluation.

:func:`suite` computes, for every assimilation experiment against the control (open loop):

* vs the truth (every column; the twin knows it) and vs the in-situ stations (``eval/insitu.nc``): Spearman R of
  35-day moving-window anomalies of the surface (first evaluation layer) and root zone (last layer), dR =
  R_DA - R_OL with a 1000-resample paired bootstrap and its significance (:mod:`.bootstrap`);
* coupling strength CP of the truth, the control and the experiment (surface vs root-zone anomalies) and the
  coupling error dCP = CP_model - CP_truth (:mod:`.coupling`);
* IVd error variances of the in-situ series and of the control at the stations (:mod:`.collocation`);
* triple collocation (pytesmo) of in-situ, control and the daily mean L retrievals of the station's column
  where the three overlap on at least 10 days;
* random-forest attribution of the columns' surface dR (vs truth) to control factors known exactly in the twin
  (:mod:`.attribution`): LAI, nadir vegetation optical depth tau, clay, the L retrieval error std of the column
  (sensor error model of the truth run), the number of retrievals used, the coupling error dCP, latitude.

:func:`render` turns the results into one HTML file with matplotlib figures embedded as base64 PNG: tables,
maps of dR (grey = not significant), PDFs of dR, per-vegetation and per-latitude panels, the attribution bar
chart with its bootstrap spread, histograms of the simulated Tb (H, V) when the truth simulated them, and the Tb
observation-minus-forecast histograms per polarisation, before and after the seasonal rescaling, of every run
under the run directory whose analysis files hold Tb rows (:func:`tb_omf`: the open-loop 'monitor' runs and the
Tb-assimilating experiments of ``python -m colmda.tb_twin``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..pft import MICROWAVE, PFT_NAMES, VWC_PER_LAI
from .anomalies import moving_anomaly
from .bootstrap import delta_r
from .collocation import ivd, triple_collocation
from .coupling import coupling_strength
from .skill import (LAT_BANDS, load_insitu, load_matrix, load_run, model_equivalent, truth_target)

__all__ = ['suite', 'render', 'write_report', 'FACTORS', 'tb_omf', 'tb_omf_section']

FACTORS = ('LAI', 'tau', 'clay', 'L_error_std', 'L_retrievals', 'dCP', 'latitude')


def _anom(values):
    """(time, point) -> (point, time) moving-window anomalies."""
    return moving_anomaly(np.asarray(values, dtype=np.float64).T)


def _column_factors(m, columns, lat, truth_dir, ctl_cp, truth_cp):
    """Control factors of the given columns (FACTORS order), all known exactly in the twin."""
    from ..domain import Domain
    from ..obs.simulate import retrieval_error_std
    from ..obs.sensors import default_specs

    dom = Domain.load(m.domain_file) if m.domain_file else Domain.load()
    month = int(str(m.start)[5:7]) - 1
    lai = np.asarray(dom.get('lai_clim', columns), dtype=np.float64)
    lai = lai[month] if lai.ndim == 2 else lai
    pft = np.asarray(dom.get('pft', columns), dtype=np.int64)
    clay = np.asarray(dom.get('clay', columns), dtype=np.float64)
    tau = MICROWAVE[pft, 0] * (VWC_PER_LAI * lai + MICROWAVE[pft, 2])
    spec = default_specs()['L']
    nobs = np.zeros(columns.size)
    man = truth_dir / 'manifest.json'
    obs_file = truth_dir / 'obs' / 'L.nc'
    if man.is_file():
        import json

        sim = json.loads(man.read_text()).get('settings', {}).get('observations', {})
        changes = {f: float(sim[k][0]) for k, f in (('sim_error_bare', 'error_std_bare'),
                                                   ('sim_error_slope', 'error_slope_lai'),
                                                   ('sim_repr_error', 'repr_std')) if sim.get(k)}
        if changes:
            from ..obs.sensors import spec_with
            spec = spec_with('L', **changes)
    err = np.hypot(retrieval_error_std(spec, lai), spec.repr_std)
    if obs_file.is_file():
        from ..obs.format import read_obs

        t = read_obs(obs_file)
        ok = np.isfinite(t.value)
        pos = np.searchsorted(columns, t.column[ok])
        inside = (pos < columns.size) & (columns[np.minimum(pos, columns.size - 1)] == t.column[ok])
        np.add.at(nobs, pos[inside], 1.0)
    return np.column_stack([lai, tau, clay, err, nobs, ctl_cp - truth_cp, lat]), pft


def suite(rundir, *, n_boot: int = 1000, seed: int = 0, attribution_repeats: int = 5) -> dict:
    """Scores, significance, coupling, IVd, TC and attribution of a matrix run (module docstring)."""
    from .attribution import attribute

    m = load_matrix(rundir)
    if m.truth is None:
        raise UserError(f"{m.rundir}/matrix.json: no 'truth' run; the report needs a twin matrix")
    from ..domain import Domain

    dom = Domain.load(m.domain_file) if m.domain_file else Domain.load()
    truth = load_run(m.truth, 'truth')
    tt = truth_target(truth, dom)
    runs = {e.name: load_run(e.rundir, e.name) for e in m.experiments}
    ctl = m.control
    layers = (0, tt.values.shape[1] - 1)
    res = {'name': m.name, 'rundir': str(m.rundir), 'start': str(m.start), 'end': str(m.end), 'control': ctl,
           'layers': [tt.layers[k] for k in layers], 'experiments': {}, 'n_boot': n_boot}
    eq = {n: model_equivalent(r, tt) for n, r in runs.items()}
    an_truth = [_anom(tt.values[:, k]) for k in layers]
    an = {n: [_anom(v[:, k]) for k in layers] for n, v in eq.items()}
    cp_truth = coupling_strength(*an_truth)['cp']
    cp = {n: coupling_strength(*a)['cp'] for n, a in an.items()}
    res['coupling'] = {'truth': cp_truth, **cp}
    res['columns'] = {'column': tt.column, 'lat': tt.lat, 'pft': tt.pft,
                      'lon': truth.lon[truth.where_columns(tt.column)]}
    ins = None
    if m.insitu is not None and Path(m.insitu).is_file():
        ins = load_insitu(m.insitu, dom, truth.dz_soil)
        res['stations'] = {'lat': ins.lat, 'pft': ins.pft, 'column': ins.column}
        ins_an = _anom(ins.values[:, 0])
        ctl_ins = model_equivalent(runs[ctl], ins)[:, 0]
        iv = ivd(ins.values[:, 0].T, ctl_ins.T, min_pairs=10)
        for k in ('err_var_x', 'err_var_y'):      # sampling noise can make a small variance negative: n/a
            iv[k] = np.where(iv[k] >= 0, iv[k], np.nan)
        res['ivd'] = {'insitu_err_std': np.sqrt(iv['err_var_x']), 'control_err_std': np.sqrt(iv['err_var_y']),
                      'n': iv['n']}
        third = _daily_retrievals(m.truth / 'obs' / 'L.nc', ins.column, ins.time)
        if third is not None:
            tc = triple_collocation(ins_an, _anom(ctl_ins), _anom(third), min_pairs=10)
            res['tc'] = {'err_std': np.sqrt(tc['err_var']), 'n': tc['n'], 'products': ('in situ', ctl, 'L')}
    for e in m.experiments:
        if e.name == ctl:
            continue
        ex = {'label': e.label}
        for li, k in enumerate(layers):
            ex[f'truth_{li}'] = delta_r(an_truth[li], an[e.name][li], an[ctl][li], n_boot=n_boot, seed=seed)
        if ins is not None:
            ex['insitu'] = delta_r(ins_an, _anom(model_equivalent(runs[e.name], ins)[:, 0]), _anom(ctl_ins),
                                   n_boot=n_boot, seed=seed)
        X, _ = _column_factors(m, tt.column, tt.lat, m.truth, cp[ctl], cp_truth)
        ok = np.isfinite(ex['truth_0']['dr'])
        if ok.sum() >= 20:
            ex['attribution'] = attribute(X, ex['truth_0']['dr'], FACTORS, n_repeat=attribution_repeats, seed=seed)
        res['experiments'][e.name] = ex
    tb = {}
    for pol in ('H', 'V'):
        f = m.truth / 'obs' / f'Tb{pol}.nc'
        if f.is_file():
            from ..obs.format import read_obs

            v = read_obs(f).value
            tb[pol] = v[np.isfinite(v)]
    res['tb'] = tb
    res['tb_omf'] = tb_omf(m.rundir)
    return res


def tb_omf(rundir) -> dict:
    """Tb O - F of the used rows of every run directory under ``rundir`` whose analysis files hold Tb sensors
    (attribute ``sensor_units`` with 'K'): {run: {pol: {'raw': O - F before the seasonal rescaling, 'rescaled':
    after (the innovation the filter used)}}} in K; pol 'H' / 'V' from the sensor names TbH / TbV."""
    import netCDF4

    out = {}
    for run in sorted(p for p in Path(rundir).iterdir() if (p / 'analysis').is_dir()):
        acc = {}
        for f in sorted((run / 'analysis').glob('*.nc')):
            with netCDF4.Dataset(f) as nc:
                if 'K' not in str(getattr(nc, 'sensor_units', '')).split(',') or not len(nc.dimensions['obs']):
                    continue
                names = str(nc.sensors).split(',')
                units = str(nc.sensor_units).split(',')
                used = np.asarray(nc['reason'][:]) == 0
                k = np.asarray(nc['sensor'][:])
                hx = np.asarray(nc['hx'][:], dtype=float)
                val = np.asarray(nc['value'][:], dtype=float)
                raw = np.asarray(nc['value_raw'][:], dtype=float) if 'value_raw' in nc.variables else val
                for i, (name, u) in enumerate(zip(names, units)):
                    m = used & (k == i)
                    if u != 'K' or not m.any():
                        continue
                    pol = name[-1].upper() if name.lower().startswith('tb') else name
                    a = acc.setdefault(pol, {'raw': [], 'rescaled': []})
                    a['raw'].append(raw[m] - hx[m])
                    a['rescaled'].append(val[m] - hx[m])
        if acc:
            out[run.name] = {pol: {k: np.concatenate(v) for k, v in d.items()} for pol, d in sorted(acc.items())}
    return out


def tb_omf_section(omf: dict) -> str:
    """HTML section: per run, O - F histograms of each polarisation before and after the rescaling, and a table
    of their mean and standard deviation (empty string without Tb rows)."""
    if not omf:
        return ''
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows, figs = [], []
    for run, pols in omf.items():
        fig, axes = plt.subplots(1, len(pols), figsize=(4.5 * len(pols), 3.2), squeeze=False)
        for ax, (pol, d) in zip(axes[0], pols.items()):
            both = np.concatenate([d['raw'], d['rescaled']])
            bins = np.linspace(np.nanpercentile(both, 0.5), np.nanpercentile(both, 99.5), 41)
            for key, style in (('raw', '--'), ('rescaled', '-')):
                ax.hist(d[key], bins=bins, histtype='step', lw=2, ls=style, label=f'{key}')
                rows.append([run, f'Tb {pol}', key, len(d[key]), float(np.mean(d[key])), float(np.std(d[key]))])
            ax.axvline(0.0, color='k', lw=0.8)
            ax.set(xlabel='O - F (K)', ylabel='count', title=f'{run}: Tb {pol}')
            ax.legend(fontsize=8)
        figs.append(_img(fig, f'Tb O-F histograms of {run}'))
    return ('<h2>Tb observation minus forecast</h2><p>Used rows of every run with Tb sensors; <i>raw</i> = before, '
            '<i>rescaled</i> = after the seasonal rescaling of the observations to the open-loop climatology '
            '(&amp;observations tb_climatology; identical when the run did not rescale).</p>' + ''.join(figs) +
            _table(['run', 'polarisation', 'O - F', 'rows', 'mean (K)', 'std (K)'], rows))


def _daily_retrievals(path, columns, days):
    """Daily mean retrievals (time, station) of the stations' columns, or None without a file."""
    if not Path(path).is_file():
        return None
    from ..obs.format import read_obs

    t = read_obs(path)
    val, _ = t.volumetric()
    out = np.full((days.size, columns.size), np.nan)
    s = np.zeros_like(out)
    n = np.zeros_like(out)
    d = (t.time.astype('datetime64[D]') - days[0]).astype(np.int64)
    for j, c in enumerate(columns):
        mm = (t.column == c) & np.isfinite(val) & (d >= 0) & (d < days.size)
        np.add.at(s[:, j], d[mm], val[mm])
        np.add.at(n[:, j], d[mm], 1.0)
    with np.errstate(invalid='ignore'):
        out = np.where(n > 0, s / n, np.nan)
    return out


# ------------------------------------------------------------------------------------------------- rendering
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90, bbox_inches='tight')
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode('ascii')


def _img(fig, alt) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _table(header, rows) -> str:
    h = ''.join(f'<th>{html.escape(str(c))}</th>' for c in header)
    body = ''.join('<tr>' + ''.join(f'<td>{html.escape(_fmt(c))}</td>' for c in r) + '</tr>' for r in rows)
    return f'<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return 'n/a' if not np.isfinite(v) else f'{v:.3f}'
    return str(v)


def _summary_rows(name, key, d):
    ok = np.isfinite(d['dr'])
    if not ok.any():
        return [name, key, 0, np.nan, np.nan, np.nan, np.nan, np.nan]
    return [name, key, int(ok.sum()), float(np.nanmean(d['r_ol'])), float(np.nanmean(d['r_da'])),
            float(np.nanmean(d['dr'])), float(np.mean(d['dr'][ok] > 0)),
            float(np.mean(d['significant'][ok]))]


def render(res: dict) -> str:
    """The HTML text of the report (see module docstring)."""
    import warnings

    with warnings.catch_warnings():       # all-NaN groups (too few days or stations) are shown as n/a
        warnings.simplefilter('ignore', RuntimeWarning)
        return _render(res)


def _render(res: dict) -> str:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    parts = [f'<h1>colmda evaluation report: {html.escape(res["name"])}</h1>',
             f'<p>Run directory <code>{html.escape(res["rundir"])}</code>, {res["start"]} to {res["end"]}; '
             f'control (open loop) <b>{html.escape(res["control"])}</b>. Skill = Spearman R of 35-day moving-window '
             f'anomalies; dR = R_DA - R_OL, significance by a {res["n_boot"]}-resample paired bootstrap (95 % '
             f'interval excludes 0). Layers: surface {res["layers"][0]}, root zone {res["layers"][1]}. '
             'Definitions and sign conventions: docs/evaluation.md.</p>']
    rows = []
    for name, ex in res['experiments'].items():
        for li, lay in enumerate(res['layers']):
            rows.append(_summary_rows(ex['label'], f'truth {lay}', ex[f'truth_{li}']))
        if 'insitu' in ex:
            rows.append(_summary_rows(ex['label'], 'in situ', ex['insitu']))
    parts.append('<h2>Skill summary</h2>' + _table(
        ['experiment', 'against', 'n', 'mean R_OL', 'mean R_DA', 'mean dR', 'fraction dR > 0',
         'fraction significant'], rows))
    col = res['columns']
    for name, ex in res['experiments'].items():
        d = ex['truth_0']
        fig, ax = plt.subplots(1, 3, figsize=(16, 4))
        fig.subplots_adjust(wspace=0.45)
        sig = d['significant']
        vmax = max(0.05, float(np.nanmax(np.abs(d['dr'])))) if np.isfinite(d['dr']).any() else 0.1
        ax[0].scatter(col['lon'][~sig], col['lat'][~sig], c='0.75', s=30, marker='s', label='not significant')
        sc = ax[0].scatter(col['lon'][sig], col['lat'][sig], c=d['dr'][sig], cmap='RdBu', vmin=-vmax, vmax=vmax,
                           s=30, marker='s')
        fig.colorbar(sc, ax=ax[0], label='dR (surface, vs truth)')
        ax[0].set(xlabel='longitude', ylabel='latitude', title=f'{ex["label"]}: dR map (blue = DA better)')
        ax[0].legend(loc='lower right', fontsize=7)
        for li, lay in enumerate(res['layers']):
            v = ex[f'truth_{li}']['dr']
            v = v[np.isfinite(v)]
            if v.size:
                ax[1].hist(v, bins=20, density=True, histtype='step', lw=2, label=f'truth {lay}')
        if 'insitu' in ex:
            v = ex['insitu']['dr'][np.isfinite(ex['insitu']['dr'])]
            if v.size:
                ax[1].hist(v, bins=20, density=True, histtype='step', lw=2, label='in situ')
        ax[1].axvline(0, color='k', lw=0.8)
        ax[1].set(xlabel='dR = R_DA - R_OL', ylabel='probability density', title='PDF of dR')
        if ax[1].get_legend_handles_labels()[0]:
            ax[1].legend(fontsize=8)
        bands = [(lab, (col['lat'] >= lo) & (col['lat'] < hi)) for lab, lo, hi in LAT_BANDS]
        vals = [np.nanmean(d['dr'][mk]) if np.isfinite(d['dr'][mk]).any() else np.nan for _, mk in bands]
        ax[2].bar([b for b, _ in bands], vals, color='tab:blue')
        ax[2].axhline(0, color='k', lw=0.8)
        ax[2].set(ylabel='mean dR (surface)', title='per latitude band')
        parts.append(f'<h2>{html.escape(ex["label"])}: maps, PDFs, latitude bands</h2>' + _img(fig, 'dR map'))
        pfts = sorted(set(col['pft'].tolist()))
        fig, ax = plt.subplots(figsize=(10, 3.5))
        means = [np.nanmean(d['dr'][col['pft'] == p]) for p in pfts]
        ax.barh([PFT_NAMES[p] for p in pfts], means, color='tab:green')
        ax.axvline(0, color='k', lw=0.8)
        ax.set(xlabel='mean dR (surface, vs truth)', title='per vegetation type')
        parts.append(_img(fig, 'dR per vegetation'))
        if 'attribution' in ex:
            a = ex['attribution']
            fig, ax = plt.subplots(figsize=(8, 3.5))
            order = np.argsort(a['importance'])
            ax.barh(np.array(a['names'])[order], a['importance'][order], xerr=a['importance_std'][order],
                    color='tab:red', capsize=3)
            ax.set(xlabel='normalised permutation importance (mean +- std over bootstrap repeats)',
                   title=f'Attribution of surface dR (10-fold CV r = {a["cv_r"]:.2f} +- {a["cv_r_std"]:.2f})')
            parts.append('<h3>Random-forest attribution</h3>' + _img(fig, 'attribution') + _table(
                ['factor', 'importance', 'std'], [[n, i, s] for n, i, s in
                                                  zip(a['names'], a['importance'], a['importance_std'])]))
    cp = res['coupling']
    rows = [[k, float(np.nanmean(v)), float(np.nanmean(v - cp['truth']))] for k, v in cp.items()]
    parts.append('<h2>Surface-root-zone coupling strength</h2><p>CP = 1 - sqrt((R - 1)^2 + (alpha - 1)^2), '
                 'R = Spearman correlation of surface and root-zone anomalies, alpha = std ratio surface/root '
                 'zone; dCP = CP_run - CP_truth.</p>' + _table(['run', 'mean CP', 'mean dCP'], rows))
    if 'ivd' in res:
        iv = res['ivd']
        parts.append('<h2>IVd error estimates at the stations</h2>' + _table(
            ['product', 'median error std (m3 m-3)', 'stations'],
            [['in situ', float(np.nanmedian(iv['insitu_err_std'])), int(np.isfinite(iv['insitu_err_std']).sum())],
             [res['control'], float(np.nanmedian(iv['control_err_std'])),
              int(np.isfinite(iv['control_err_std']).sum())]]))
    if 'tc' in res:
        tc = res['tc']
        ok = np.isfinite(tc['err_std'][:, 0])
        parts.append('<h2>Triple collocation (pytesmo tcol_metrics)</h2>' + _table(
            ['product', 'median error std of anomalies (own units)', 'stations with 3 products'],
            [[p, float(np.nanmedian(tc['err_std'][:, k])) if ok.any() else np.nan, int(ok.sum())]
             for k, p in enumerate(tc['products'])]))
    if res['tb']:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for pol, v in res['tb'].items():
            ax.hist(v, bins=40, histtype='step', lw=2, label=f'Tb {pol}')
        ax.set(xlabel='K', ylabel='count', title='Simulated SMAP-like Tb of the truth')
        ax.legend()
        parts.append('<h2>Brightness temperatures</h2>' + _img(fig, 'Tb histograms'))
    if res.get('tb_omf'):
        parts.append(tb_omf_section(res['tb_omf']))
    style = ('body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}'
             'td,th{border:1px solid #999;padding:3px 8px;text-align:right}th{background:#eee}img{max-width:100%}')
    now = _dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>colmda report '
            f'{html.escape(res["name"])}</title><style>{style}</style></head><body>' + '\n'.join(parts) +
            f'<hr><p>Written by colmda report, {now}.</p></body></html>\n')


def write_report(rundir, out=None, **kw) -> Path:
    """Compute :func:`suite`, render it and write ``out`` (default RUNDIR/evaluation/report.html) atomically."""
    from ..output import atomic_path

    res = suite(rundir, **kw)
    text = render(res)
    out = Path(out) if out else Path(rundir) / 'evaluation' / 'report.html'
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding='utf-8')
    return out
