"""Readers of real soil moisture products in their native formats, producing colmda observation tables.

Entry point::

    read_observations(path, product, domain, columns=None, *, start=None, end=None, sensor=None, **options)
        -> ProductObservations

* ``path``: a product file, or a directory of them (each reader says which files it takes from a directory);
* ``product``: a name of :data:`PRODUCTS` (``'smap_l2'``, ``'ascat_hsaf_cell'``, ``'ascat_eumetsat_l2'``,
  ``'smos_l3'``, ``'fy3_mwri_l2'``); ``read_observations(path, 'list')`` is an error that lists them;
* ``domain``: a :class:`colmda.domain.Domain` (grid of the model cells); ``columns``: the run's global columns
  (sorted; default ``domain.land_columns()``): pixels outside them are left out (counted);
* ``start``, ``end``: the run period (datetime64 or ISO strings, inclusive); pixels outside are left out and
  counted, a file entirely outside gives an empty table and a logged warning;
* ``sensor``: the name written into the table (the assimilation's file name ``<sensor>.nc``); default the
  product's (``SMAP``, ``ASCAT``, ``SMOS``, ``MWRI``);
* ``**options``: the reader's own keywords (``porosity`` for ASCAT, ``overpass`` for SMAP L3 / FY-3,
  ``pixel_reject``, ``pass_gap_s``, ``error`` where a product has no error estimate, ...).

The result's ``table`` is an :class:`colmda.obs.format.ObsTable` (one row per pass over one model cell), with
``n_pixels`` and ``pixel_std`` per row and ``counts`` of the pixels left out and why;
:func:`write_product_obs` writes it in the observation file format that ``&observations`` reads.

ERA5 / ERA5-Land soil moisture is a reference field, not an observation table:
:func:`colmda.obs.readers.era5.read_era5_reference` returns a :class:`colmda.obs.insitu.ReferenceField`.

Bad input (missing file or variable, wrong units, a file of another product, corrupt netCDF/HDF5) raises
:class:`colmda.errors.UserError` with a one-line message naming the file and variable; empty swaths over the
domain, all-flagged data and times outside the run are logged skips with counts.
"""

from __future__ import annotations

from ...errors import UserError, suggestion
from ._common import (DEFAULT_PASS_GAP_S, DEFAULT_PIXEL_REJECT, FLAG_QUALITY, FLAG_RFI, FLAG_SURFACE,
                      READER_FLAG_NAMES, ProductObservations, aggregate_to_cells, write_product_obs)
from .ascat import read_ascat_cells, read_ascat_eumetsat_l2
from .era5 import read_era5_reference
from .fy3 import read_fy3_mwri
from .smap import read_smap
from .smos import read_smos_l3

#: product name -> (reader function, default sensor name)
PRODUCTS = {
    'ascat_hsaf_cell': (read_ascat_cells, 'ASCAT'),
    'ascat_eumetsat_l2': (read_ascat_eumetsat_l2, 'ASCAT'),
    'smap_l2': (read_smap, 'SMAP'),
    'smos_l3': (read_smos_l3, 'SMOS'),
    'fy3_mwri_l2': (read_fy3_mwri, 'MWRI'),
}


def register(name, reader, sensor):
    """Add a reader to the registry: ``reader(path, domain, columns=None, *, start, end, sensor, **options)``."""
    PRODUCTS[name] = (reader, sensor)


def read_observations(path, product, domain, columns=None, *, start=None, end=None, sensor=None, **options):
    """Read ``path`` with the reader registered as ``product``; see the module docstring."""
    if product not in PRODUCTS:
        raise UserError(f"observation product '{product}' is not known{suggestion(product, PRODUCTS)}")
    reader, default_sensor = PRODUCTS[product]
    try:
        return reader(path, domain, columns, start=start, end=end, sensor=sensor or default_sensor, **options)
    except TypeError as e:
        if 'unexpected keyword' in str(e):
            raise UserError(f"observation product '{product}': {e}") from None
        raise


__all__ = ['PRODUCTS', 'register', 'read_observations', 'ProductObservations', 'write_product_obs',
           'aggregate_to_cells', 'read_ascat_cells', 'read_ascat_eumetsat_l2', 'read_smap', 'read_smos_l3', 'read_fy3_mwri',
    'read_era5_reference', 'FLAG_QUALITY', 'FLAG_RFI', 'FLAG_SURFACE', 'READER_FLAG_NAMES',
           'DEFAULT_PIXEL_REJECT', 'DEFAULT_PASS_GAP_S']
