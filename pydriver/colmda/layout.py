"""Index layout of the packed arrays exchanged with the Fortran core.

Mirrors ``fortran/colm_layout.f90`` with zero-based indices (Fortran index - 1); sizes (``NCS``, ``NSP``, ...)
are the same numbers. ``tests/test_core_api.py`` checks that this file and the Fortran module agree, name by
name. Each group also has a tuple of ``(name, units, description)`` used by the output writer and the docs.
"""

NL_SOIL = 10  # soil layers
NSNOW_MAX = 5  # maximum snow layers
NLEV = NSNOW_MAX + NL_SOIL  # snow + soil levels in the layered state arrays


# column scalar state cstate(NCS, ncol)
CS_TGRND = 0
CS_TLEAF = 1
CS_LDEW = 2
CS_SCV = 3
CS_SNOWDP = 4
CS_SNOWAGE = 5
CS_WA = 6
CS_ZWT = 7
CS_WDSRF = 8
NCS = 9
CS_FIELDS = (
    ('CS_TGRND', 'K', 'ground surface (top layer) temperature'),
    ('CS_TLEAF', 'K', 'leaf temperature'),
    ('CS_LDEW', 'kg m-2', 'water (liquid + snow) intercepted on the canopy'),
    ('CS_SCV', 'kg m-2', 'snow water equivalent, all snow'),
    ('CS_SNOWDP', 'm', 'snow depth'),
    ('CS_SNOWAGE', '-', 'non-dimensional snow age'),
    ('CS_WA', 'kg m-2', 'water stored in the unconfined aquifer'),
    ('CS_ZWT', 'm', 'water table depth below the surface'),
    ('CS_WDSRF', 'kg m-2', 'ponded surface water'),
)

# soil parameters per layer soilpar(NSP, nl_soil, ncol)
SP_THETA_S = 0
SP_THETA_R = 1
SP_KSAT = 2
SP_PSI_S = 3
SP_BSW = 4
SP_ALPHA_VG = 5
SP_N_VG = 6
SP_L_VG = 7
SP_CSOL = 8
SP_TKDRY = 9
SP_TKSATU = 10
SP_TKSATF = 11
SP_ROOTFR = 12
SP_PSI_E = 13
NSP = 14
SP_FIELDS = (
    ('SP_THETA_S', 'm3 m-3', 'porosity / saturated water content'),
    ('SP_THETA_R', 'm3 m-3', 'residual water content'),
    ('SP_KSAT', 'mm s-1', 'saturated hydraulic conductivity'),
    ('SP_PSI_S', 'mm, negative', 'Campbell saturated matric potential'),
    ('SP_BSW', '-', 'Campbell / Clapp-Hornberger exponent b'),
    ('SP_ALPHA_VG', 'mm-1', 'van Genuchten alpha'),
    ('SP_N_VG', '-', 'van Genuchten n'),
    ('SP_L_VG', '-', 'Mualem pore-connectivity L'),
    ('SP_CSOL', 'J m-3 K-1', 'volumetric heat capacity of the soil solids'),
    ('SP_TKDRY', 'W m-1 K-1', 'thermal conductivity of dry soil'),
    ('SP_TKSATU', 'W m-1 K-1', 'thermal conductivity of saturated unfrozen soil'),
    ('SP_TKSATF', 'W m-1 K-1', 'thermal conductivity of saturated frozen soil'),
    ('SP_ROOTFR', '-', 'fraction of roots in the layer'),
    ('SP_PSI_E', 'mm, negative', 'air-entry potential of the vG air-entry form (>= 0: CoLM202X -1 mm)'),
)

# vegetation (PFT) parameters vegpar(NVP, ncol)
VP_ISVEG = 0
VP_HTOP = 1
VP_Z0M = 2
VP_DISPLA = 3
VP_DLEAF = 4
VP_CHIL = 5
VP_RHO_VIS = 6
VP_RHO_NIR = 7
VP_TAU_VIS = 8
VP_TAU_NIR = 9
VP_C3 = 10
VP_VCMAX25 = 11
VP_EFFCON = 12
VP_G1 = 13
VP_G0 = 14
VP_EXTKN = 15
VP_SMPSO = 16
VP_SMPSC = 17
VP_LAIMX = 18
NVP = 19
VP_FIELDS = (
    ('VP_ISVEG', '-', '1 vegetated, 0 bare soil'),
    ('VP_HTOP', 'm', 'canopy top height'),
    ('VP_Z0M', 'm', 'momentum roughness length of the canopy'),
    ('VP_DISPLA', 'm', 'zero-plane displacement height'),
    ('VP_DLEAF', 'm', 'characteristic leaf dimension'),
    ('VP_CHIL', '-', 'leaf angle distribution index, Ross-Goudriaan chi_L'),
    ('VP_RHO_VIS', '-', 'leaf reflectance, visible'),
    ('VP_RHO_NIR', '-', 'leaf reflectance, near infrared'),
    ('VP_TAU_VIS', '-', 'leaf transmittance, visible'),
    ('VP_TAU_NIR', '-', 'leaf transmittance, near infrared'),
    ('VP_C3', '-', '1 for C3 photosynthesis, 0 for C4'),
    ('VP_VCMAX25', 'mol CO2 m-2 s-1', 'maximum carboxylation rate at 25 C, canopy top'),
    ('VP_EFFCON', 'mol CO2 mol-1 photon', 'quantum efficiency'),
    ('VP_G1', '-', 'Ball-Berry slope m'),
    ('VP_G0', 'mol H2O m-2 s-1', 'Ball-Berry intercept b'),
    ('VP_EXTKN', '-', 'nitrogen (Vcmax) extinction coefficient in the canopy'),
    ('VP_SMPSO', 'mm', 'soil matric potential at which stomata start to close'),
    ('VP_SMPSC', 'mm', 'soil matric potential at which stomata are closed'),
    ('VP_LAIMX', 'm2 m-2', 'crops: LAI of full height, htop = VP_HTOP min(LAI/(laimx-1),1)^2; 0 = fixed height'),
)

# column parameters colpar(NCP, ncol)
CP_LAI = 0
CP_SAI = 1
CP_ZREF = 2
CP_ALBSAT_VIS = 3
CP_ALBSAT_NIR = 4
CP_ALBDRY_VIS = 5
CP_ALBDRY_NIR = 6
NCP = 7
CP_FIELDS = (
    ('CP_LAI', 'm2 m-2', 'leaf area index'),
    ('CP_SAI', 'm2 m-2', 'stem area index'),
    ('CP_ZREF', 'm', 'height of the forcing above the ground'),
    ('CP_ALBSAT_VIS', '-', 'saturated soil albedo, visible'),
    ('CP_ALBSAT_NIR', '-', 'saturated soil albedo, near infrared'),
    ('CP_ALBDRY_VIS', '-', 'dry soil albedo, visible'),
    ('CP_ALBDRY_NIR', '-', 'dry soil albedo, near infrared'),
)

# forcing forc(NF, nsteps, ncol): step means (precipitation, radiation) or step-centred values
F_TAIR = 0
F_QAIR = 1
F_PSURF = 2
F_PREC = 3
F_WIND = 4
F_SWDOWN = 5
F_LWDOWN = 6
F_COSZEN = 7
NF = 8
F_FIELDS = (
    ('F_TAIR', 'K', 'air temperature at zref'),
    ('F_QAIR', 'kg kg-1', 'specific humidity at zref'),
    ('F_PSURF', 'Pa', 'surface pressure'),
    ('F_PREC', 'kg m-2 s-1', 'total precipitation rate'),
    ('F_WIND', 'm s-1', 'wind speed at zref'),
    ('F_SWDOWN', 'W m-2', 'downward shortwave radiation'),
    ('F_LWDOWN', 'W m-2', 'downward longwave radiation'),
    ('F_COSZEN', '-', 'cosine of the solar zenith angle, mid-step'),
)

# diagnostics diag(ND, nout, ncol): means over each output interval
D_SWNET = 0
D_LWNET = 1
D_QLE = 2
D_QH = 3
D_QG = 4
D_EVAP = 5
D_TVEG = 6
D_ESOIL = 7
D_ECANOP = 8
D_SUBSNOW = 9
D_QS = 10
D_QSB = 11
D_QSM = 12
D_RAINF = 13
D_SNOWF = 14
D_SWE = 15
D_SNOWDEPTH = 16
D_SNOWFRAC = 17
D_AVGSURFT = 18
D_RADT = 19
D_ALBEDO = 20
D_CANOPINT = 21
D_ZWT = 22
D_WA = 23
D_POND = 24
D_TWS = 25
D_GPP = 26
D_VEGT = 27
D_WBAL_ERR = 28
D_EBAL_ERR = 29
D_SOILH_ERR = 30
D_LEAF_RES = 31
D_HEATC = 32
D_BTRAN = 33
ND = 34
D_FIELDS = (
    ('D_SWNET', 'W m-2', 'net shortwave radiation, downward'),
    ('D_LWNET', 'W m-2', 'net longwave radiation, downward'),
    ('D_QLE', 'W m-2', 'latent heat flux, upward'),
    ('D_QH', 'W m-2', 'sensible heat flux, upward'),
    ('D_QG', 'W m-2', 'ground heat flux, downward into snow/soil'),
    ('D_EVAP', 'kg m-2 s-1', 'total evapotranspiration, upward'),
    ('D_TVEG', 'kg m-2 s-1', 'transpiration'),
    ('D_ESOIL', 'kg m-2 s-1', 'evaporation from the soil and ponded water'),
    ('D_ECANOP', 'kg m-2 s-1', 'evaporation of intercepted water'),
    ('D_SUBSNOW', 'kg m-2 s-1', 'evaporation + sublimation from snow on the ground'),
    ('D_QS', 'kg m-2 s-1', 'surface runoff'),
    ('D_QSB', 'kg m-2 s-1', 'subsurface runoff / baseflow'),
    ('D_QSM', 'kg m-2 s-1', 'snowmelt'),
    ('D_RAINF', 'kg m-2 s-1', 'rainfall rate'),
    ('D_SNOWF', 'kg m-2 s-1', 'snowfall rate'),
    ('D_SWE', 'kg m-2', 'snow water equivalent'),
    ('D_SNOWDEPTH', 'm', 'snow depth'),
    ('D_SNOWFRAC', '-', 'snow covered fraction'),
    ('D_AVGSURFT', 'K', 'average surface (ground/snow) temperature'),
    ('D_RADT', 'K', 'radiative surface temperature'),
    ('D_ALBEDO', '-', 'surface albedo'),
    ('D_CANOPINT', 'kg m-2', 'canopy interception storage'),
    ('D_ZWT', 'm', 'water table depth'),
    ('D_WA', 'kg m-2', 'aquifer water storage'),
    ('D_POND', 'kg m-2', 'ponded surface water'),
    ('D_TWS', 'kg m-2', 'total column water storage'),
    ('D_GPP', 'kg C m-2 s-1', 'gross primary production'),
    ('D_VEGT', 'K', 'leaf temperature'),
    ('D_WBAL_ERR', 'kg m-2 s-1', 'water balance residual, storage change minus net input'),
    ('D_EBAL_ERR', 'W m-2', 'surface energy balance residual'),
    ('D_SOILH_ERR', 'W m-2', 'snow/soil heat balance residual'),
    ('D_LEAF_RES', 'W m-2', 'leaf energy balance residual at convergence'),
    ('D_HEATC', 'J m-2', 'snow + soil heat content relative to ice at tfrz'),
    ('D_BTRAN', '-', 'soil water stress factor for transpiration'),
)

# per-layer soil diagnostics diag_soil(NDS, nl_soil, nout, ncol)
DS_SOILMOIST = 0
DS_SOILTEMP = 1
DS_SOILICE = 2
NDS = 3
DS_FIELDS = (
    ('DS_SOILMOIST', 'kg m-2', 'soil water, liquid + ice'),
    ('DS_SOILTEMP', 'K', 'soil temperature'),
    ('DS_SOILICE', 'kg m-2', 'soil ice'),
)
