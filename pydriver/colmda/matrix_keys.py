"""The keys of `colmda twin` (``&matrix``) and the experiment table of seed 000, owned by the twin matrix.

Kept apart from :mod:`colmda.matrix` (which runs experiments and so sits above the configuration) so that
:mod:`colmda.config` can aggregate these keys without importing the driver.
"""

from __future__ import annotations

from .assim.rules import check_rule
from .keys import Key, check_box

X = "matrix"

#: name -> (label, sensors, assimilation then forecast?, uses &matrix new_rule?)
EXPERIMENTS = {
    "CTL": ("CTL", (), False, False),
    "L_fc": ("L (then forecast)", ("L",), True, False),
    "C_fc": ("C (then forecast)", ("C",), True, False),
    "X_fc": ("X (then forecast)", ("X",), True, False),
    "L": ("L", ("L",), False, False),
    "C": ("C", ("C",), False, False),
    "X": ("X", ("X",), False, False),
    "LC": ("L+C", ("L", "C"), False, False),
    "LX": ("L+X", ("L", "X"), False, False),
    "CX": ("C+X", ("C", "X"), False, False),
    "LCX": ("L+C+X", ("L", "C", "X"), False, False),
    "NEW": ("NEW", ("L", "C", "X"), False, True),
}


def _check_experiments(v: list):
    bad = [x for x in v if x not in EXPERIMENTS]
    return f"names from {', '.join(EXPERIMENTS)}; unknown '{bad[0]}'" if bad else None


def _check_method(v: str):
    from .assim import base

    names = [n for n in base.names() if base.get(n).changes_state]
    return None if v in names else f"a registered analysis method other than 'none': {', '.join(names)}"


def _check_ensemble_methods(v: list):
    from .assim import base

    names = [n for n in base.names() if base.get(n).members == "ensemble"]
    bad = [x for x in v if x not in names]
    return f"ensemble methods from {', '.join(names)}; unknown '{bad[0]}'" if bad else None


GROUP_DOC = "the twin-experiment matrix of `colmda twin` (ignored by `colmda run`)"

#: the &matrix keys (colmda.config aggregates them)
KEYS = (
    Key(X, "experiments", "str_list", ["CTL", "L_fc", "C_fc", "X_fc", "L", "C", "X", "LC", "LX", "CX", "LCX", "NEW"],
        "-", "`colmda twin`: experiments of the seed 000 Table 1 matrix to run (CTL always runs): CTL; L_fc, C_fc, "
        "X_fc (assimilation until forecast_start, then free forecast); L, C, X, LC, LX, CX, LCX (continuous); NEW "
        "(L+C+X with new_rule)", check=lambda v: _check_experiments(v)),
    Key(X, "forecast_start", "date", "", "UTC", "`colmda twin`: end of the assimilation phase of L_fc, C_fc, X_fc; "
        "'' = the middle of the experiment (rounded to a window)"),
    Key(X, "truth_seed", "int", 101, "-", "`colmda twin`: weather realisation of the truth run (the experiments "
        "use &forcing seed, which must differ)", lo=0),
    Key(X, "truth_init_saturation", "float", 0.0, "-", "`colmda twin`: cold-start soil saturation of the truth "
        "run (different from &experiment init_saturation gives the model a wrong initial state, a classic twin "
        "design); 0 = the same as the model", lo=0.0, hi=1.0),
    Key(X, "truth_initial_restart", "path", "", "-", "`colmda twin`: the truth run starts from the state in this "
        "restart file (its own spun-up state); '' = the same start as the model (&experiment initial_restart or "
        "a cold start)"),
    Key(X, "new_rule", "str_list", ["X:dense:exclude"], "-", "`colmda twin`: &assimilation vegetation_rule of the "
        "NEW experiment (seed 000: no X-band over dense vegetation)", check=check_rule),
    Key(X, "errors_from_reference", "bool", True, "-", "`colmda twin`: set the background error of each "
        "controlled layer to the RMSE of CTL against the reference field (as seed 000 does), for a method with the "
        "key &assimilation background_error (the SEKF); .false. = &assimilation background_error"),
    Key(X, "insitu_stations", "int", 600, "-", "`colmda twin`: number of simulated in-situ stations (10 cm)",
        lo=1, hi=100000),
    Key(X, "insitu_box", "float_list", [], "degrees", "`colmda twin`: south, north, west, east of the in-situ "
        "network; empty = all run columns", check=lambda v: check_box(v) if v else None, lengths=(0, 4)),
    Key(X, "method", "str", "sekf", "-", "`colmda twin`: &assimilation method of the assimilation experiments (any "
        "registered method that analyses; see colmda.assim.base)", allowed="a registered method other than 'none'",
        check=_check_method),
    Key(X, "ensemble_methods", "str_list", [], "-", "`colmda twin`: ensemble methods ('enkf', 'etkf', 'letkf') "
        "whose experiments run beside those of &matrix method, named EXPERIMENT_METHOD (e.g. L_letkf) with "
        "&matrix n_members members, perturbed forcing (&forcing perturb = .true.) and the namelist's &enkf keys; "
        "empty = none", check=lambda v: _check_ensemble_methods(v)),
    Key(X, "ensemble_experiments", "str_list", ["L", "LC", "NEW"], "-", "`colmda twin`: the experiments of the "
        "table run with every ensemble method of ensemble_methods", check=lambda v: _check_experiments(v)),
    Key(X, "n_members", "int", 24, "-", "`colmda twin`: ensemble size of the ensemble experiments (SMAP L4: 24)",
        lo=2, hi=1000),
)
